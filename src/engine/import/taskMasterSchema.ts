import { z } from 'zod';

/**
 * The shape of Task Master's task lists, as zod schemas: what `taskMasterFormat.ts` validates a
 * tasks.json against before `taskMasterDrafts.ts` maps its tasks to the pipeline's.
 */

const MAX_ID = 999_999_999;

const ID_MESSAGE = 'expected a Task Master id: a whole number such as 12';
const DEPENDENCY_MESSAGE = 'expected a Task Master dependency: a task id such as 12 or a subtask id such as "12.3"';
// The message sits on every branch: zod reports the branch whose type matched, not the union's.
const wholeNumber = (message: string) => z.number({ error: message }).int(message).min(0, message).max(MAX_ID, message);
const tmIdSchema = z.union([wholeNumber(ID_MESSAGE), z.string().regex(/^\s*\d{1,9}\s*$/, ID_MESSAGE)], {
  error: ID_MESSAGE,
});
const tmDependencySchema = z.union(
  [wholeNumber(DEPENDENCY_MESSAGE), z.string().regex(/^\s*\d{1,9}(\.\d{1,9})?\s*$/, DEPENDENCY_MESSAGE)],
  {
    error: DEPENDENCY_MESSAGE,
  },
);
// The AI-facing schemas in Task Master allow null for details and testStrategy, and files carry it.
const optionalText = z.string().nullish();

const itemShape = {
  id: tmIdSchema,
  title: z.string({ error: 'expected a title (a string)' }),
  description: optionalText,
  details: optionalText,
  testStrategy: optionalText,
  status: z.string().nullish(),
  priority: z.string().nullish(),
  dependencies: z.array(tmDependencySchema).nullish(),
};
// Loose objects: Task Master adds fields over time (complexity, updatedAt, metadata, parentId...),
// and none of them matter to the pipeline, so they are ignored rather than refused.
const SUBTASK_ID_MESSAGE = 'expected a Task Master subtask id: a whole number such as 3 (or "12.3" in task 12)';
// Some files write a subtask's id with its task's number in front ("12.3"), as Task Master shows it.
const tmSubtaskIdSchema = z.union(
  [wholeNumber(SUBTASK_ID_MESSAGE), z.string().regex(/^\s*\d{1,9}(\.\d{1,9})?\s*$/, SUBTASK_ID_MESSAGE)],
  { error: SUBTASK_ID_MESSAGE },
);
const tmSubtaskSchema = z.looseObject({ ...itemShape, id: tmSubtaskIdSchema });
const tmTaskSchema = z.looseObject({ ...itemShape, subtasks: z.array(tmSubtaskSchema).nullish() });
export const tmTaskListSchema = z.looseObject({ tasks: z.array(tmTaskSchema) });

export type TmItem = z.infer<typeof tmSubtaskSchema>;
export type TmTask = z.infer<typeof tmTaskSchema>;
