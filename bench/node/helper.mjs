// What every load helper shares: its JSON config and the controller's go signal.
import { readFileSync } from "node:fs";
import readline from "node:readline";

// The helper's CONFIG.json, named by its first argument.
export const config = JSON.parse(readFileSync(process.argv[2], "utf8"));

// Ready, then wait for the controller's go: the epoch ms every helper of a window starts from.
export async function waitForGo() {
  process.stdout.write("ready\n");
  const lines = readline.createInterface({ input: process.stdin });
  const line = await new Promise((resolve) => lines.once("line", resolve));
  lines.close();
  return Number(line) + (config.delay || 0);
}
