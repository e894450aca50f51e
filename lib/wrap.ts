// Word wrapping for text shown to people (help, tables, listings): one rule everywhere.

export interface WrapOptions {
  /** put before every line (default ''), counted in the width */
  indent?: string;
  /** put before the first line instead (default: indent); '' with an indent gives a hanging indent */
  firstIndent?: string;
  /** cut a word longer than a line into pieces (default: it stands alone on a line of its own, too long) */
  breakLongWords?: boolean;
}

/**
 * The words of `text` (split at whitespace, joined by one space) in lines of at most `width`
 * characters, the indent included; greedy, as a reader expects. Empty text gives no lines.
 */
export function wrapWords(text: string, width: number, opts: WrapOptions = {}): string[] {
  const indent = opts.indent ?? '';
  const first = opts.firstIndent ?? indent;
  const lines: string[] = [];
  // the room on the line being filled (its indent taken off)
  const room = () => width - (lines.length === 0 ? first : indent).length;
  const push = (line: string) => lines.push((lines.length === 0 ? first : indent) + line);
  let cur = '';
  for (let word of text.split(/\s+/)) {
    while (opts.breakLongWords && word.length > Math.max(1, room())) {
      if (cur) push(cur);
      cur = '';
      const cut = Math.max(1, room());
      push(word.slice(0, cut));
      word = word.slice(cut);
    }
    if (cur && cur.length + 1 + word.length > room()) {
      push(cur);
      cur = word;
    } else cur = cur ? `${cur} ${word}` : word;
  }
  if (cur) push(cur);
  return lines;
}
