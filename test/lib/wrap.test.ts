// One word-wrap rule for help text, tables and listings.
import { describe, expect, it } from 'vitest';
import { wrapWords } from '../../lib/wrap.js';

describe('wrapWords', () => {
  it('fills lines greedily, the indent counted in the width', () => {
    // room 4 after the indent: "a bb" fits, "ccc" goes on
    expect(wrapWords('a bb ccc', 6, { indent: '  ' })).toEqual(['  a bb', '  ccc']);
    expect(wrapWords('a bb ccc', 8, { indent: '  ' })).toEqual(['  a bb', '  ccc']);
    expect(wrapWords('a bb ccc', 10, { indent: '  ' })).toEqual(['  a bb ccc']);
  });

  it('hangs the lines after the first', () => {
    expect(wrapWords('aaa bbb ccc ddd', 7, { firstIndent: '', indent: '  ' })).toEqual(['aaa bbb', '  ccc', '  ddd']);
  });

  it('leaves a long word whole, or cuts it when asked', () => {
    expect(wrapWords('abcdefghij xy', 4)).toEqual(['abcdefghij', 'xy']);
    expect(wrapWords('abcdefghij xy', 4, { breakLongWords: true })).toEqual(['abcd', 'efgh', 'ij', 'xy']);
  });

  it('joins the words by one space; empty text has no lines', () => {
    expect(wrapWords('a  \n b', 80)).toEqual(['a b']);
    expect(wrapWords('', 80)).toEqual([]);
  });
});
