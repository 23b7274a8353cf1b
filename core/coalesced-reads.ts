/**
 * Reads that arrive while earlier ones are under way wait and go together, as one read of all
 * their keys: a burst of small lookups (a foreach's first wave, seen by every data plane at once)
 * becomes a few full ones. Nothing waits for company: with a slot free, a read starts at once.
 */
export class CoalescedReads<V> {
  private readonly queue: { readonly keys: readonly string[]; readonly resolve: (found: Map<string, V>) => void; readonly reject: (error: unknown) => void }[] = [];
  private running = 0;

  /**
   * @param load reads these keys (distinct) and returns what it found, by key
   * @param parallel reads under way at once
   * @param maxKeys keys one read may carry (a single request larger than this still goes alone)
   */
  constructor(
    private readonly load: (keys: readonly string[]) => Promise<Map<string, V>>,
    private readonly parallel = 1,
    private readonly maxKeys = 1000,
  ) {}

  /** What `load` found for these keys (and possibly for others read with them). */
  read(keys: readonly string[]): Promise<Map<string, V>> {
    return new Promise((resolve, reject) => {
      this.queue.push({ keys, resolve, reject });
      this.start();
    });
  }

  private start(): void {
    while (this.running < this.parallel && this.queue.length > 0) {
      const group = [this.queue.shift()!];
      let count = group[0]!.keys.length;
      while (this.queue.length > 0 && count + this.queue[0]!.keys.length <= this.maxKeys) {
        const next = this.queue.shift()!;
        group.push(next);
        count += next.keys.length;
      }
      this.running++;
      this.load([...new Set(group.flatMap((waiting) => waiting.keys))])
        .then((found) => {
          for (const waiting of group) waiting.resolve(found);
        }, (error: unknown) => {
          for (const waiting of group) waiting.reject(error);
        })
        .finally(() => {
          this.running--;
          this.start();
        });
    }
  }
}
