/** A circular doubly linked list with head sentinels: <linux/list.h>, for the chunk slots. */
export class ListHead {
  next: ListHead = this;
  prev: ListHead = this;
}

function __list_add(n: ListHead, prev: ListHead, next: ListHead): void {
  next.prev = n;
  n.next = next;
  n.prev = prev;
  prev.next = n;
}

export function list_add(n: ListHead, head: ListHead): void {
  __list_add(n, head, head.next);
}

export function list_add_tail(n: ListHead, head: ListHead): void {
  __list_add(n, head.prev, head);
}

/** Moves an entry to the front of a list. */
export function list_move(e: ListHead, head: ListHead): void {
  e.prev.next = e.next;
  e.next.prev = e.prev;
  list_add(e, head);
}

/** Moves an entry to the back of a list. */
export function list_move_tail(e: ListHead, head: ListHead): void {
  e.prev.next = e.next;
  e.next.prev = e.prev;
  list_add_tail(e, head);
}

/** The entries of a list, in order (a copy: safe against moves while iterating). */
export function list_entries<T extends ListHead>(head: ListHead): T[] {
  const out: T[] = [];
  for (let p = head.next; p !== head; p = p.next) out.push(p as T);
  return out;
}
