// Progress lines on stderr: a live bar on a terminal, a line per 10% otherwise.

export function byteProgress(label: string, stream: NodeJS.WriteStream = process.stderr): (done: number, total: number) => void {
  let lastDecile = -1;
  const start = performance.now();
  return (done, total) => {
    const fraction = total > 0 ? done / total : 1;
    const mb = (b: number): string => (b / 2 ** 20).toFixed(0);
    const line = `${label}: ${(fraction * 100).toFixed(0).padStart(3)}% (${mb(done)}/${mb(total)} MiB, ${((performance.now() - start) / 1000).toFixed(1)} s)`;
    if (stream.isTTY) {
      stream.write(`\r${line}${fraction >= 1 ? '\n' : ''}`);
    } else {
      const decile = Math.floor(fraction * 10);
      if (decile !== lastDecile) stream.write(`${line}\n`);
      lastDecile = decile;
    }
  };
}

export function countProgress(label: string, stream: NodeJS.WriteStream = process.stderr): (done: number, total: number) => void {
  return (done, total) => {
    if (total <= 1) return;
    if (stream.isTTY) stream.write(`\r${label}: ${done}/${total}${done >= total ? '\n' : ''}`);
    else if (done === total || done % Math.max(1, Math.floor(total / 10)) === 0) stream.write(`${label}: ${done}/${total}\n`);
  };
}
