/**
 * Every id the extension contributes (commands, views, context keys, settings) as typed constants,
 * shared by the host (src/host/) and the views (src/views/). test/contributions.test.ts checks them
 * against package.json, so a renamed command cannot silently stop working. The Tasks tree's
 * per-task flags that package.json's menus test are in src/views/taskActions.ts. No `vscode`
 * import here: the test runs in plain Node.
 */
export const COMMANDS = {
  init: 'agentPipeline.init',
  start: 'agentPipeline.start',
  stop: 'agentPipeline.stop',
  showStatus: 'agentPipeline.showStatus',
  addTask: 'agentPipeline.addTask',
  importTasks: 'agentPipeline.importTasks',
  addAgent: 'agentPipeline.addAgent',
  switchOrchestration: 'agentPipeline.switchOrchestration',
  switchRollout: 'agentPipeline.switchRollout',
  rolloutCheck: 'agentPipeline.rolloutCheck',
  promotePilot: 'agentPipeline.promotePilot',
  exportStatus: 'agentPipeline.exportStatus',
  showMetrics: 'agentPipeline.showMetrics',
  showLog: 'agentPipeline.showLog',
  refresh: 'agentPipeline.refresh',
  openTaskFile: 'agentPipeline.openTaskFile',
  showTaskDiff: 'agentPipeline.showTaskDiff',
  retryTask: 'agentPipeline.retryTask',
  blockTask: 'agentPipeline.blockTask',
  unblockTask: 'agentPipeline.unblockTask',
  cancelTask: 'agentPipeline.cancelTask',
  reprioritiseTask: 'agentPipeline.reprioritiseTask',
  editTask: 'agentPipeline.editTask',
  reviewTask: 'agentPipeline.reviewTask',
  approveReview: 'agentPipeline.approveReview',
  requestChanges: 'agentPipeline.requestChanges',
  openAgentTerminal: 'agentPipeline.openAgentTerminal',
  openAgentWorktree: 'agentPipeline.openAgentWorktree',
  restartAgent: 'agentPipeline.restartAgent',
  stopAgent: 'agentPipeline.stopAgent',
} as const;
export type CommandId = (typeof COMMANDS)[keyof typeof COMMANDS];

export const VIEWS = {
  container: 'agentPipeline',
  tasks: 'agentPipeline.tasks',
  agents: 'agentPipeline.agents',
} as const;

/** Context keys for `when` clauses. */
export const CONTEXT = {
  initialised: 'agentPipeline.initialised',
  running: 'agentPipeline.running',
  leading: 'agentPipeline.leading',
  followingOther: 'agentPipeline.followingOther',
  /** The active editor is the review of a task awaiting review (its Approve / Request Changes show). */
  reviewing: 'agentPipeline.reviewing',
} as const;

export const SETTINGS = {
  section: 'agentPipeline',
  runner: 'runner',
  autoResume: 'autoResume',
  metricsEnabled: 'metrics.enabled',
  metricsPort: 'metrics.port',
  presets: 'presets',
  stageChecks: 'stageChecks',
  notifyMerged: 'notifications.merged',
} as const;

/** The metrics panel's webview type (its serializer is registered at activation). */
export const METRICS_VIEW_TYPE = 'agentPipeline.metrics';

/** The scheme of read-only diff documents. */
export const DIFF_SCHEME = 'agent-pipeline-diff';
