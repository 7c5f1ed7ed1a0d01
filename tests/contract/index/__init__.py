"""Contract suite of the vector index: the real Pinecone SDK against every backend."""
