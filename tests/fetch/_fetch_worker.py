"""Run in a subprocess by the tests: fetch one source and print what came back as JSON."""

import json
import resource
import sys

if __name__ == "__main__":
    uri, cache = sys.argv[1], sys.argv[2]
    if len(sys.argv) > 3:  # a file-size limit, to simulate a full disk
        limit = int(sys.argv[3])
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    from weightport.errors import WeightportError
    from weightport.fetch.step import fetch_files
    from weightport.fetch.types import FetchOptions
    from weightport.registry import resolve

    source = resolve(uri)
    try:
        fetched = fetch_files(source, FetchOptions(cache_dir=cache, progress=False, retries=0))
    except WeightportError as exc:
        print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
        sys.exit(3)
    print(json.dumps({"path": str(fetched.path), "sha256": fetched.sha256, "cached": fetched.cached}))
