"""The HTTP edge: the FastAPI app factory, dependencies, schemas, error mapping and routers."""
