import type { Task } from '../../src/engine/model/schema';

/**
 * A task as the engine stores a freshly added one (pending, at the first stage, no attempt yet),
 * with the fields a test or benchmark cares about overridden: one place that knows every field.
 */
export function newTask(id: string, seq: number, fields: Partial<Task> = {}, at = '2026-01-01T00:00:00.000Z'): Task {
  return {
    id,
    title: `Task ${id}`,
    description: '',
    prerequisites: [],
    priority: 'medium',
    paths: [],
    labels: [],
    status: 'pending',
    stage: 'architect',
    assigned_to: null,
    branch: `pipeline/${id}`,
    attempt: 0,
    failures: 0,
    not_before: null,
    blocked_reason: null,
    created_at: at,
    updated_at: at,
    seq,
    merged_commit: null,
    history: [],
    ...fields,
  };
}
