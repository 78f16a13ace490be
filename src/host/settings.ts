import * as vscode from 'vscode';
import { z } from 'zod';
import { validateCommand } from '../engine/agents/commandTemplate';
import { describeZodError } from '../engine/model/schema';
import { SETTINGS } from '../contributions';

/**
 * The extension's settings, validated on read: a wrong value is reported in the log (with the
 * setting's name) and ignored, never half used.
 */
const presetsSchema = z.record(
  z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, 'preset names are lower-case words'),
  z.string().min(1),
);
const checksSchema = z.record(z.string(), z.string().min(1));

export function userPresets(log: vscode.LogOutputChannel): Record<string, string> {
  const raw = vscode.workspace.getConfiguration(SETTINGS.section).get<unknown>(SETTINGS.presets, {});
  const r = presetsSchema.safeParse(raw);
  if (!r.success) {
    log.warn(`Setting agentPipeline.presets ignored: ${describeZodError(r.error)}`);
    return {};
  }
  const ok: Record<string, string> = {};
  for (const [name, template] of Object.entries(r.data)) {
    try {
      validateCommand(template);
      ok[name] = template;
    } catch (e) {
      log.warn(`Setting agentPipeline.presets.${name} ignored: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return ok;
}

/** Stage checks from the settings, for stages whose configuration has none. */
export function userStageChecks(log: vscode.LogOutputChannel): Record<string, string> {
  const raw = vscode.workspace.getConfiguration(SETTINGS.section).get<unknown>(SETTINGS.stageChecks, {});
  const r = checksSchema.safeParse(raw);
  if (!r.success) {
    log.warn(`Setting agentPipeline.stageChecks ignored: ${describeZodError(r.error)}`);
    return {};
  }
  return r.data;
}

export function metricsSettings(): { enabled: boolean; port: number } {
  const c = vscode.workspace.getConfiguration(SETTINGS.section);
  const port = c.get<number>(SETTINGS.metricsPort, 9464);
  return {
    enabled: c.get<boolean>(SETTINGS.metricsEnabled, false),
    port: Number.isInteger(port) && port > 0 && port < 65536 ? port : 9464,
  };
}
