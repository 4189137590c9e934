// Starts two real registries (docker-registry) for the whole run: one open, one with htpasswd auth.

import { randomBytes } from "node:crypto";
import type { TestProject } from "vitest/node";
import { startRegistry } from "../helpers/registry-server.js";

declare module "vitest" {
  export interface ProvidedContext {
    registry: {
      openHost: string;
      authHost: string;
      username: string;
      password: string;
    };
  }
}

export default async function setup(
  project: TestProject,
): Promise<() => Promise<void>> {
  const username = "envpack";
  const password = randomBytes(12).toString("hex");
  const [open, auth] = await Promise.all([
    startRegistry(),
    startRegistry({ auth: { username, password } }),
  ]);
  project.provide("registry", {
    openHost: open.host,
    authHost: auth.host,
    username,
    password,
  });
  return async () => {
    await Promise.all([open.stop(), auth.stop()]);
  };
}
