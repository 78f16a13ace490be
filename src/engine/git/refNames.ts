import { PipelineError } from '../errors';

/**
 * Branch names reach git as arguments (never through a shell), but a name from the configuration
 * could still start with a dash and be read as an option, or be something git refuses. Task
 * branches come from `taskBranch()` (ids.ts); this check covers the configured target and pilot
 * branches. It is stricter than `git check-ref-format` on purpose: plain ASCII, no spaces, no `@{`.
 */
const BRANCH_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9._/-]{0,199}$/;

export function isBranchName(name: string): boolean {
  return (
    BRANCH_PATTERN.test(name) &&
    !name.includes('..') &&
    !name.includes('//') &&
    !name.includes('/.') &&
    !name.endsWith('/') &&
    !name.endsWith('.') &&
    !name.endsWith('.lock') &&
    !name.split('/').some((part) => part.endsWith('.lock')) &&
    name !== 'HEAD'
  );
}

export function assertBranchName(name: string, where = 'branch'): string {
  if (!isBranchName(name)) {
    throw new PipelineError('invalid-config', `Invalid branch name ${JSON.stringify(name)}.`, {
      where,
      fix: 'Use letters, digits, ".", "_", "-" and "/" (not at the start or end, no ".."), such as "main" or "pipeline/pilot".',
    });
  }
  return name;
}

/** The full ref of a branch, after validating its name. */
export function branchRef(name: string, where?: string): string {
  return `refs/heads/${assertBranchName(name, where)}`;
}
