/** A stream's category: its id up to the first '-' (the whole id without one). */
export function streamCategory(streamId: string): string {
  const i = streamId.indexOf('-');
  return i < 0 ? streamId : streamId.slice(0, i);
}
