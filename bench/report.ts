/** Plain-text tables for the terminal and the JSON record of the same figures. */

export type Cell = string | number | null;

export interface Table {
  title: string;
  /** What the figures are and how they were taken (printed under the title). */
  note?: string;
  columns: string[];
  rows: Cell[][];
}

export function formatCell(cell: Cell, digits = 1): string {
  if (cell === null) return '–';
  if (typeof cell === 'number') {
    if (!Number.isFinite(cell)) return String(cell);
    if (Number.isInteger(cell)) return String(cell);
    return Math.abs(cell) >= 100 ? cell.toFixed(0) : cell.toFixed(digits);
  }
  return cell;
}

export function printTable(table: Table, adapter: string): void {
  const text = table.rows.map((row) => row.map((c) => formatCell(c)));
  const widths = table.columns.map((h, i) => Math.max(h.length, ...text.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  console.log(`\n## ${table.title}  [${adapter}]`);
  if (table.note) console.log(table.note);
  console.log(line(table.columns));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of text) console.log(line(row));
}
