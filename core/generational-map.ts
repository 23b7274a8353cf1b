/**
 * A bounded memory of recent entries for the request path: two generations of a Map. When the
 * current one holds half the capacity it becomes the previous one and the older generation is
 * dropped whole, so the newest `capacity / 2` entries are always kept and never more than
 * `capacity`. Nothing is evicted per insert: iterating a Map from its front after many deletions
 * (the usual LRU trick) makes every insert slower as the holes pile up.
 */
export class GenerationalMap<V> {
  private current = new Map<string, V>();
  private previous = new Map<string, V>();
  private readonly generationSize: number;

  constructor(capacity: number) {
    this.generationSize = Math.max(1, Math.floor(capacity / 2));
  }

  get(key: string): V | undefined {
    return this.current.get(key) ?? this.previous.get(key);
  }

  has(key: string): boolean {
    return this.current.has(key) || this.previous.has(key);
  }

  set(key: string, value: V): void {
    if (!this.current.has(key) && this.current.size >= this.generationSize) {
      this.previous = this.current;
      this.current = new Map();
    }
    this.current.set(key, value);
  }

  delete(key: string): void {
    this.current.delete(key);
    this.previous.delete(key);
  }

  /** Distinct keys held (an O(n) count: for metrics, not the request path). */
  get size(): number {
    let size = this.current.size;
    for (const key of this.previous.keys()) if (!this.current.has(key)) size++;
    return size;
  }

  clear(): void {
    this.current = new Map();
    this.previous = new Map();
  }
}
