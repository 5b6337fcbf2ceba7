import { describe, expect, it } from 'vitest';
import { GAP, GRID_TOP_GUESS, gridWindow, initialWindow, MIN_COL_W, OVERSCAN_ROWS, ROW_H, windowSlice } from '../../web/src/grid-window.js';

describe('gridWindow', () => {
  it('fits as many minimum-width columns as the width allows, at least one', () => {
    expect(gridWindow(0, 4 * MIN_COL_W + 3 * GAP, 800).cols).toBe(4);
    expect(gridWindow(0, 4 * MIN_COL_W + 3 * GAP - 1, 800).cols).toBe(3);
    expect(gridWindow(0, 100, 800).cols).toBe(1);
  });

  it('covers the rows in the viewport plus the overscan, and nothing before the grid', () => {
    // Grid starts 300 px below the top of a 1,000 px viewport: rows 0 .. ceil(700 / ROW_H) + overscan.
    const w = gridWindow(300, 1100, 1000);
    expect(w.firstRow).toBe(0);
    expect(w.lastRow).toBe(Math.ceil(700 / ROW_H) + OVERSCAN_ROWS);
  });

  it('follows the scroll position', () => {
    // Scrolled 50 rows into the grid.
    const w = gridWindow(-50 * ROW_H, 1100, 1000);
    expect(w.firstRow).toBe(50 - OVERSCAN_ROWS);
    expect(w.lastRow).toBe(50 + Math.ceil(1000 / ROW_H) + OVERSCAN_ROWS);
  });

  it('stays valid when the grid is below the viewport', () => {
    const w = gridWindow(5000, 1100, 1000);
    expect(w.firstRow).toBe(0);
    expect(w.lastRow).toBeGreaterThanOrEqual(w.firstRow);
  });
});

describe('windowSlice', () => {
  it('maps rows to item indices and clamps at the end of the list', () => {
    expect(windowSlice({ cols: 4, firstRow: 2, lastRow: 5 }, 1000)).toEqual({ start: 8, end: 24 });
    expect(windowSlice({ cols: 4, firstRow: 240, lastRow: 260 }, 1000)).toEqual({ start: 960, end: 1000 });
    expect(windowSlice({ cols: 4, firstRow: 300, lastRow: 310 }, 1000)).toEqual({ start: 1000, end: 1000 });
  });
});

describe('initialWindow: the first paint before the grid can be measured', () => {
  it('guesses the columns from the viewport and the rows from a typical grid top', () => {
    // 1400 px wide: 1348 px of grid → 5 columns of ≥ 250 px; grid at ~400 px in a 1000 px viewport.
    expect(initialWindow(1400, 1000)).toEqual(gridWindow(GRID_TOP_GUESS, 1348, 1000, 0));
    expect(initialWindow(1400, 1000).cols).toBe(5);
    // No overscan rows yet: the rows from the guessed top to the bottom of the viewport.
    expect(windowSlice(initialWindow(1400, 1000), 1000)).toEqual({ start: 0, end: 30 });
    // Wider than the page's max width: the page, not the window, limits the columns.
    expect(initialWindow(3000, 1000).cols).toBe(initialWindow(1600, 1000).cols);
  });
});
