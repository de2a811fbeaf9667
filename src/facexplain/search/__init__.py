"""1:N face search: FAISS indexes over float embeddings and binary codes, and galleries."""
