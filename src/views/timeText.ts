/**
 * Times as the views write them. No `vscode` here: plain Node tests read these too.
 */

/** How long since `iso`: "42s", "7m", "1h5m"; empty for none. */
export function since(iso: string | null, now = Date.now()): string {
  if (!iso) return '';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  return s < 60
    ? `${s}s`
    : s < 3600
      ? `${Math.floor(s / 60)}m`
      : `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
}

/** A time of day in the local zone: "17:30" today, else "Dec 4 17:30" (a reset can be days away). */
export function clockTime(iso: string, now = Date.now()): string {
  const d = new Date(iso);
  const hm = `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
  return new Date(now).toDateString() === d.toDateString()
    ? hm
    : `${d.toLocaleString('en-US', { month: 'short' })} ${d.getDate()} ${hm}`;
}
