// What a command printed instead of a file it wrote (--out FILE; program.ts writes it).

/** The answer once its file is written: where, how many bytes, and what the command's summary adds. */
export interface WrittenAnswer {
  out: string;
  bytes: number;
  format?: unknown;
  events?: unknown;
}

/** What a command wrote to its --out file. */
export function renderWritten(r: WrittenAnswer): string {
  const what = r.events !== undefined ? `${r.events} events` : `${r.bytes} bytes`;
  return `wrote ${what}${r.format ? ` (${r.format})` : ''} to ${r.out}`;
}
