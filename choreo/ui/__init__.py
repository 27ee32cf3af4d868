"""`choreo ui`: a local web view of the sagas, their timelines, the services and their dead letters.

It reads the log and the local stores and writes nothing, except a dead-letter retry an operator
confirms. Needs the `ui` extra (Starlette and uvicorn).
"""
