// Progress on stderr, on a terminal only (logs and pipes get the command's one summary line, not a
// stream of progress lines): bytes written as a live line, and items encoded (time-based).

/** "label: 42% (10/24 MiB, 1.3 s)" redrawn in place on a terminal; nothing when the stream is not one. */
export function byteProgress(label: string, stream: Pick<NodeJS.WriteStream, 'write' | 'isTTY'> = process.stderr): (done: number, total: number) => void {
  const start = performance.now();
  if (stream.isTTY !== true) return () => undefined;
  return (done, total) => {
    const fraction = total > 0 ? done / total : 1;
    const mb = (b: number): string => (b / 2 ** 20).toFixed(0);
    const line = `${label}: ${(fraction * 100).toFixed(0).padStart(3)}% (${mb(done)}/${mb(total)} MiB, ${((performance.now() - start) / 1000).toFixed(1)} s)`;
    stream.write(`\r${line}${fraction >= 1 ? '\n' : ''}`);
  };
}

export interface ItemProgress {
  /** `done` of the total items are finished. */
  update(done: number): void;
  /** Redraws the line now (the timer calls it every `intervalMs`). */
  tick(): void;
  /** Stops the timer; ends the line if one was shown. */
  stop(): void;
}

export interface ItemProgressOptions {
  stream?: Pick<NodeJS.WriteStream, 'write' | 'isTTY'>;
  /** No output at all (-q). */
  quiet?: boolean;
  /** Nothing is shown before this much time has passed (default 1000 ms): short runs stay silent. */
  delayMs?: number;
  intervalMs?: number;
  now?: () => number;
}

/**
 * A time-based progress line on a terminal: after `delayMs`, "label: done/total items, elapsed,
 * ETA" redrawn in place. Silent when the stream is not a TTY (logs, pipes) or with `quiet`.
 */
export function itemProgress(label: string, total: number, options: ItemProgressOptions = {}): ItemProgress {
  const { stream = process.stderr, delayMs = 1000, intervalMs = 250, now = () => performance.now() } = options;
  const start = now();
  let done = 0;
  let shown = false;
  const live = stream.isTTY === true && !options.quiet;
  const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
  const tick = (): void => {
    const elapsed = now() - start;
    if (!live || elapsed < delayMs) return;
    const eta = done > 0 && done < total ? `, ETA ${seconds((elapsed / done) * (total - done))}` : done === 0 ? ', ETA …' : '';
    stream.write(`\r\x1b[K${label}: ${done}/${total} items, ${seconds(elapsed)} elapsed${eta}`);
    shown = true;
  };
  const timer = live ? setInterval(tick, intervalMs) : undefined;
  timer?.unref();
  return {
    update(n) {
      done = n;
      tick();
    },
    tick,
    stop() {
      if (timer) clearInterval(timer);
      if (shown) stream.write('\n');
      shown = false;
    },
  };
}
