// A progress bar for long work, on stderr, only when a person is watching (stdout and stderr are
// terminals, no --json, not CI). cli-progress is imported only when a bar is actually shown.
// The bar is driven by a position count when the handler reports one through ctx.onProgress;
// otherwise it shows the work's size and completes when the handler returns.

export interface Progress {
  /** pass as ctx.onProgress: the log position reached */
  update(position: number): void;
  stop(): void;
}

const NONE: Progress = { update() {}, stop() {} };

export function progressWanted(json: boolean): boolean {
  return !json && process.stdout.isTTY === true && process.stderr.isTTY === true && !process.env.CI && process.env.CLOCKLEDGER_NO_PROGRESS === undefined;
}

/** Start a bar labelled `label` over `total` positions, or cells, ... (`unit`; 0 = unknown size). */
export async function startProgress(label: string, total: number, json: boolean, unit = 'events'): Promise<Progress> {
  if (!progressWanted(json)) return NONE;
  const { default: cliProgress } = await import('cli-progress');
  const bar = new cliProgress.SingleBar(
    {
      format: total > 0 ? `${label} [{bar}] {percentage}% | {value}/{total} ${unit} | {duration_formatted}` : `${label} … {duration_formatted}`,
      hideCursor: true,
      clearOnComplete: true,
      stream: process.stderr,
    },
    cliProgress.Presets.shades_classic,
  );
  const size = Math.max(total, 1);
  bar.start(size, 0);
  let stopped = false;
  return {
    update(position: number) {
      if (!stopped) bar.update(Math.min(position, size));
    },
    stop() {
      if (stopped) return;
      stopped = true;
      bar.update(size);
      bar.stop();
    },
  };
}
