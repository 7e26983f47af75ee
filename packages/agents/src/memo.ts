/**
 * `make(cfg)` built once per config object — the clients, filters and engines an op holds; a new
 * `configure` brings a new config and so a new one. A `make` that throws (a bad attr) keeps nothing.
 */
export function perConfig<C extends object, T>(make: (cfg: C) => T): (cfg: C) => T {
  const made = new WeakMap<C, T>();
  return (cfg) => {
    let v = made.get(cfg);
    if (v === undefined) {
      v = make(cfg);
      made.set(cfg, v);
    }
    return v;
  };
}

/** The promise `make()` gives, kept under `key` in `cache`; a rejected one is forgotten, so the next call tries again. */
export function cachedPromise<T>(
  cache: Map<string, Promise<T>>,
  key: string,
  make: () => Promise<T>,
): Promise<T> {
  let v = cache.get(key);
  if (!v) {
    v = make();
    cache.set(key, v);
    v.catch(() => cache.delete(key));
  }
  return v;
}
