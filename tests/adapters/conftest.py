from tests.helpers.fixtures import file_server, hub, isolated_caches  # noqa: F401  (fixtures)
