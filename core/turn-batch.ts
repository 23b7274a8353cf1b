/**
 * Items added during one turn of the event loop, handed on together when the turn ends: what
 * arrives in a burst (a foreach's first calls, a batch of grants) becomes one message, while a
 * lone item waits for nothing but the end of its own turn.
 */
export class TurnBatch<T> {
  private items: T[] = [];

  constructor(private readonly flush: (items: T[]) => void) {}

  add(item: T): void {
    this.items.push(item);
    if (this.items.length > 1) return;
    setImmediate(() => {
      const items = this.items;
      this.items = [];
      this.flush(items);
    });
  }
}
