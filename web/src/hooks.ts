import { Component, type ComponentType, type FunctionComponent } from 'preact';
import { useLayoutEffect, useState } from 'preact/hooks';

interface Subscribable {
  subscribe(fn: () => void): () => void;
  /** Incremented on every notification. */
  readonly version: number;
}

/**
 * Re-renders the calling component whenever `source` notifies. Subscribes in a
 * layout effect (same task as the render, so no notification can fall in
 * between) and re-checks the version, in case one arrived before the first commit.
 */
export function useSubscription(source: Subscribable): void {
  const [, setTick] = useState(0);
  const seen = source.version;
  useLayoutEffect(() => {
    const unsubscribe = source.subscribe(() => setTick((n) => n + 1));
    if (source.version !== seen) setTick((n) => n + 1);
    return unsubscribe;
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [source]);
}

declare global {
  interface Window {
    /** The `immune.*` localStorage entries, read by index.html's inline script before the bundle ran. */
    __immuneFlags?: Record<string, string | null>;
  }
}

/** A stored flag: from the early copy when index.html made one (no slow first localStorage access), else from localStorage. */
function storedFlag(key: string): string | null {
  const early = typeof window === 'undefined' ? undefined : window.__immuneFlags;
  return early ? (early[key] ?? null) : localStorage.getItem(key);
}

/** A boolean kept in localStorage, so collapsed sections stay collapsed across reloads. */
export function usePersistentFlag(key: string, initial: boolean): [boolean, (v: boolean) => void] {
  const [value, setValue] = useState(() => {
    const stored = storedFlag(key);
    return stored === null ? initial : stored === '1';
  });
  const set = (v: boolean) => {
    localStorage.setItem(key, v ? '1' : '0');
    if (window.__immuneFlags) window.__immuneFlags[key] = v ? '1' : '0';
    setValue(v);
  };
  return [value, set];
}

function shallowEqual(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  for (const k in a) if (a[k] !== b[k]) return false;
  for (const k in b) if (!(k in a)) return false;
  return true;
}

/**
 * Skips re-rendering when every prop is identical (===). preact/compat has one
 * too, but importing compat pulls its React shims into the bundle.
 */
export function memo<P extends object>(render: FunctionComponent<P>): ComponentType<P> {
  return class Memo extends Component<P> {
    override shouldComponentUpdate(next: P): boolean {
      return !shallowEqual(this.props as Record<string, unknown>, next as Record<string, unknown>);
    }
    override render(props: P) {
      return render(props);
    }
  };
}
