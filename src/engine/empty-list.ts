/**
 * An empty array whose elements are already of V8's "any object" kind. A fresh `[]` holds small
 * integers until the first push of an object or a string changes its kind, and when that first push
 * comes after the code around it has been optimised (the first detection, a label first seen late in
 * the input), V8 throws that code away and compiles it again: 30–300 ms of compiler time each on a
 * two-core machine whose other core runs the replay's parse worker. For arrays that hot code creates
 * empty and fills only now and then.
 */
export function emptyList<T>(): T[] {
  const a: T[] = [undefined as T];
  a.pop();
  return a;
}
