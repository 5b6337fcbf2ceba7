/**
 * Windowing of the agent grid: which rows of fixed-height cards intersect the
 * viewport. Pure arithmetic, so it is unit-tested without a browser.
 */

/** Card geometry shared with styles.css (.card height, .grid gap, minimum column width). */
export const CARD_H = 132;
export const GAP = 8;
export const MIN_COL_W = 250;
export const ROW_H = CARD_H + GAP;
/** Rows rendered above and below the viewport, so fast scrolling does not show blanks. */
export const OVERSCAN_ROWS = 3;
/** Below this many cards everything is rendered (browser find works, no geometry to track). */
export const WINDOW_FROM = 120;

export interface GridWindow {
  cols: number;
  firstRow: number;
  lastRow: number;
}

/**
 * The rows of the grid to render, from the grid's top relative to the viewport
 * (negative once scrolled past), its width and the viewport height.
 */
export function gridWindow(gridTop: number, gridWidth: number, viewportHeight: number, overscan = OVERSCAN_ROWS): GridWindow {
  const cols = Math.max(1, Math.floor((gridWidth + GAP) / (MIN_COL_W + GAP)));
  const firstRow = Math.max(0, Math.floor(-gridTop / ROW_H) - overscan);
  const lastRow = Math.max(firstRow, Math.ceil((viewportHeight - gridTop) / ROW_H) + overscan);
  return { cols, firstRow, lastRow };
}

/** The slice of `count` items that the window covers: [start, end). */
export function windowSlice(w: GridWindow, count: number): { start: number; end: number } {
  return { start: Math.min(count, w.firstRow * w.cols), end: Math.min(count, (w.lastRow + 1) * w.cols) };
}

/** Horizontal space around the grid (.page max-width and padding, .section-body padding in styles.css). */
const PAGE_MAX_W = 1600;
const SIDE_PADDING = 2 * 16 + 2 * 10;
/** Where the grid usually starts on a first load (below the header, fleet stats and approval sections). */
export const GRID_TOP_GUESS = 400;

/**
 * The window to render before the grid can be measured (the first paint): from the viewport
 * alone, and without the overscan rows, which only matter once the page scrolls. The
 * measurement right after the first paint adds them. With 1,000 agents on a 1400×1000 viewport
 * this paints 30 cards first instead of 45.
 */
export function initialWindow(viewportWidth: number, viewportHeight: number): GridWindow {
  return gridWindow(GRID_TOP_GUESS, Math.min(viewportWidth, PAGE_MAX_W) - SIDE_PADDING, viewportHeight, 0);
}
