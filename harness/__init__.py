"""The shared harness of the benchmark (bench/) and the tests (tests/): the real stack, the saga
deployed on it under a topic prefix, worker processes, and watching sagas end."""
