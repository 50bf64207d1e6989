/**
 * Options every API function takes.
 *
 * @module
 */
import type { ProjectPaths } from "../util/paths.ts";

/** Where results live (default: `projectPaths()`). */
export interface PathsOption {
  paths?: ProjectPaths;
}
