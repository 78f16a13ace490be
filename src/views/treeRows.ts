/**
 * What a tree must redraw after a change of the state: the rows whose content changed, not the whole
 * tree. A refresh from the root makes VS Code ask for every row again (each a message from the
 * extension host to the window, and a tooltip built per row), and the engine changes its state
 * several times a second while agents work; most changes touch one task or one agent. No `vscode`
 * here, so plain Node tests check the decisions; the tree providers fire the rows named.
 */

/** A tree's rows by id, each with what it shows. */
export interface RowContent {
  /** The object the row is drawn from; the engine replaces a task or agent object when it changes. */
  readonly source: unknown;
  /** The row's words that change without its object changing (a time since, a step). */
  readonly text: string;
  /**
   * Everything the row shows (its tooltip too), worked out only when the object or the words
   * changed: a state read again from disk (a window that takes the lead) has new objects for
   * unchanged tasks, and their rows need no redraw.
   */
  readonly detail?: () => string;
}

interface Shown {
  source: unknown;
  text: string;
  detail: string | undefined;
}

/** Remembers what each row last showed and names the rows that changed since. */
export class RowMemory {
  private readonly shown = new Map<string, Shown>();

  /**
   * Records the rows as they are now and returns the ids of those that changed since the last call.
   * A row seen for the first time is not named (its parent, which gains it, redraws); a row that is
   * gone is forgotten.
   */
  update(rows: Iterable<[string, RowContent]>): string[] {
    const changed: string[] = [];
    const seen = new Set<string>();
    for (const [id, row] of rows) {
      seen.add(id);
      const last = this.shown.get(id);
      if (last && last.source === row.source && last.text === row.text) continue;
      const detail = row.detail?.();
      if (last && (detail === undefined || detail !== last.detail)) changed.push(id);
      this.shown.set(id, { source: row.source, text: row.text, detail });
    }
    for (const id of this.shown.keys()) if (!seen.has(id)) this.shown.delete(id);
    return changed;
  }

  clear(): void {
    this.shown.clear();
  }
}

export interface RowGroup {
  readonly id: string;
  readonly label: string;
  readonly tasks: readonly string[];
}

/** The Tasks tree's redraw: from the root when its groups appear or go, else the groups and rows named. */
export type GroupedChange = { all: true } | { all: false; groups: string[]; rows: string[] };

/**
 * The Tasks tree's memory: its groups (which tasks each holds) and its task rows. A group whose
 * members changed redraws (its count and children); a task whose row changed redraws alone; when a
 * group appears or goes, the tree redraws from the root, since VS Code cannot add a row to a parent it
 * is not told of.
 */
export class GroupedRowMemory {
  private groups: RowGroup[] | undefined;
  private readonly rows = new RowMemory();

  /** What to redraw, or undefined when nothing shown changed. */
  update(groups: readonly RowGroup[], rows: Iterable<[string, RowContent]>): GroupedChange | undefined {
    const before = this.groups;
    this.groups = groups.map((g) => ({ id: g.id, label: g.label, tasks: [...g.tasks] }));
    const changedRows = this.rows.update(rows);
    if (!before || before.length !== groups.length || before.some((g, i) => g.id !== groups[i]!.id))
      return { all: true };
    const changedGroups = groups
      .filter((g, i) => g.label !== before[i]!.label || !sameList(g.tasks, before[i]!.tasks))
      .map((g) => g.id);
    if (changedGroups.length === 0 && changedRows.length === 0) return undefined;
    return { all: false, groups: changedGroups, rows: changedRows };
  }

  /** Forgets everything: the next update redraws from the root. */
  clear(): void {
    this.groups = undefined;
    this.rows.clear();
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
