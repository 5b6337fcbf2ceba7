import type { ComponentChildren } from 'preact';
import { usePersistentFlag } from '../hooks';

interface Props {
  id: string;
  title: string;
  /** Shown after the title, e.g. a count. */
  badge?: ComponentChildren;
  /** Buttons on the right of the header (bulk actions). */
  tools?: ComponentChildren;
  children: ComponentChildren;
}

/** A collapsible dashboard section; the header is a real button, so Tab/Enter/Space work. */
export function Section({ id, title, badge, tools, children }: Props) {
  const [open, setOpen] = usePersistentFlag(`immune.section.${id}`, true);
  return (
    <section class="section" id={`section-${id}`} data-open={open ? '1' : '0'}>
      <header class="section-head">
        <h2>
          <button type="button" class="toggle" aria-expanded={open} aria-controls={`body-${id}`} onClick={() => setOpen(!open)}>
            <span class="chevron" aria-hidden="true">{open ? '▾' : '▸'}</span> {title}
          </button>
          {badge !== undefined && <span class="section-badge">{badge}</span>}
        </h2>
        {open && tools && <div class="section-tools">{tools}</div>}
      </header>
      {open && (
        <div class="section-body" id={`body-${id}`}>
          {children}
        </div>
      )}
    </section>
  );
}
