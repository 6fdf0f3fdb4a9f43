"""Archive search: image embeddings of files, datasets and whole scenes in a FAISS index with GeoParquet metadata."""
