// Text from the log or a request shown to a person: its control characters written as escapes, so
// a VM's destroy reason of "\e[2J\e]0;T\a" shows as those characters instead of clearing the
// terminal and retitling its window. Covered: C0 controls and DEL, C1 controls (U+0080-U+009F,
// which some terminals take as CSI and OSC), the line and paragraph separators, and the Unicode
// bidirectional formatting characters (which reorder what a reader sees).

// eslint-disable-next-line no-control-regex
const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;
// eslint-disable-next-line no-control-regex
const CONTROLS_BUT_NEWLINE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;

const NAMED: Record<string, string> = { '\u0007': '\\a', '\b': '\\b', '\t': '\\t', '\n': '\\n', '\v': '\\v', '\f': '\\f', '\r': '\\r', '\u001b': '\\e' };

function escapeOne(c: string): string {
  const named = NAMED[c];
  if (named) return named;
  const code = c.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** `text` with every control character escaped (\e, \a, \n, \x9b, \u202e, ...); `keepNewlines` leaves line breaks. */
export function printable(text: string, keepNewlines = false): string {
  return text.replace(keepNewlines ? CONTROLS_BUT_NEWLINE : CONTROLS, escapeOne);
}
