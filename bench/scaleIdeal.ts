/**
 * What the agents' own time allows: the makespan of a pipeline whose engine costs nothing. Tasks go
 * through the stages in order, each stage has `perStage` agents, a stage takes a fixed time, a task
 * enters the first stage once every prerequisite is merged (the merge itself is instant), and free
 * agents take the oldest ready task first, as the scheduler does with equal priorities. The ideal
 * of a run is this makespan on its own task graph, so a graph that holds the pipeline back lowers
 * the ideal, never the ratio.
 */
export interface IdealTask {
  /** Indices (into the task list) of the task's prerequisites, all earlier in the list. */
  readonly prerequisites: readonly number[];
}

/** The makespan in ms; `stageMs[s]` is how long stage s takes. */
export function idealMakespanMs(tasks: readonly IdealTask[], stageMs: readonly number[], perStage: number): number {
  const stages = stageMs.length;
  const n = tasks.length;
  // When each task finished each stage (Infinity until it has); merged = finished the last stage.
  const finished: number[][] = Array.from({ length: stages }, () => new Array<number>(n).fill(Infinity));
  // When each agent of each stage is free again.
  const free: number[][] = Array.from({ length: stages }, () => new Array<number>(perStage).fill(0));
  // Which tasks each stage has started, so each is taken once.
  const started: boolean[][] = Array.from({ length: stages }, () => new Array<boolean>(n).fill(false));
  // The oldest task each stage has not started yet: the scan for the next one starts there.
  const oldest = new Array<number>(stages).fill(0);
  let done = 0;
  let now = 0;
  while (done < n) {
    // At `now`, every free agent of every stage takes the oldest task that is ready for it.
    for (let s = 0; s < stages; s++) {
      for (let a = 0; a < perStage; a++) {
        if (free[s]![a]! > now) continue;
        while (oldest[s]! < n && started[s]![oldest[s]!]) oldest[s]!++;
        let pick = -1;
        for (let i = oldest[s]!; i < n; i++) {
          if (started[s]![i]) continue;
          const ready =
            s === 0
              ? tasks[i]!.prerequisites.every((p) => finished[stages - 1]![p]! <= now)
              : finished[s - 1]![i]! <= now;
          if (ready) {
            pick = i;
            break;
          }
        }
        if (pick < 0) break;
        started[s]![pick] = true;
        finished[s]![pick] = now + stageMs[s]!;
        free[s]![a] = now + stageMs[s]!;
        if (s === stages - 1) done++;
      }
    }
    // The next moment anything changes: an agent gets free or a stage ends.
    let next = Infinity;
    for (let s = 0; s < stages; s++) for (const t of free[s]!) if (t > now && t < next) next = t;
    if (next === Infinity) {
      if (done < n) throw new Error('the task graph cannot finish (a prerequisite later in the list?)');
      break;
    }
    now = next;
  }
  let makespan = 0;
  for (const t of finished[stages - 1]!) makespan = Math.max(makespan, t);
  return makespan;
}
