/** The known name closest to a misspelt one (at most 3 edits away), for "did you mean" hints. */
export function closest(name: string, known: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = 4;
  for (const candidate of known) {
    const distance = editDistance(name, candidate);
    if (distance < bestDistance) {
      bestDistance = distance;
      best = candidate;
    }
  }
  return best;
}

/** ` (did you mean X?)`, or nothing when no known name is close. */
export function didYouMean(name: string, known: Iterable<string>): string {
  const best = closest(name, known);
  return best ? ` (did you mean ${best}?)` : '';
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length] as number;
}

/** The fix for an unknown key of the file: the close key if there is one, and every known key. */
export function unknownKeyFix(key: string, known: readonly string[]): string {
  const best = closest(key, known);
  return best ? `did you mean ${best}? Rename it or remove it (known keys: ${known.join(', ')})` : `remove it or use one of: ${known.join(', ')}`;
}
