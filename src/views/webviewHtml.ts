import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';

/**
 * The one HTML helper for webviews: `default-src 'none'`, scripts only with a fresh nonce, styles
 * and scripts only from `media/`, nothing from the network.
 */
export function webviewHtml(
  webview: vscode.Webview,
  extensionUri: vscode.Uri,
  opts: { title: string; script: string; styles: string[]; body: string },
): string {
  const nonce = randomBytes(16).toString('base64');
  const media = (p: string) => webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'media', p));
  const csp = [
    `default-src 'none'`,
    `img-src ${webview.cspSource} data:`,
    `style-src ${webview.cspSource}`,
    `font-src ${webview.cspSource}`,
    `script-src 'nonce-${nonce}'`,
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
${opts.styles.map((s) => `<link rel="stylesheet" href="${media(s).toString()}">`).join('\n')}
<title>${opts.title}</title>
</head>
<body>
${opts.body}
<script nonce="${nonce}" src="${media(opts.script).toString()}"></script>
</body>
</html>`;
}

export function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewOptions {
  return { enableScripts: true, localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'media')] };
}
