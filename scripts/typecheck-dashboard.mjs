#!/usr/bin/env node
// Type-checks the Grafana dashboard against Grafana's published schema: the
// TypeScript types of the @grafana/schema npm package (the dashboard model,
// and each panel's options and field config by panel type), with the
// TypeScript compiler. A misspelt or misplaced option fails: object literals
// get TypeScript's excess property checks.
//
//   node scripts/typecheck-dashboard.mjs [DASHBOARD.json]
//
// Both packages come from scripts/install-test-deps.sh, pinned, in
// target/test-deps/grafana-schema (GRAFANA_SCHEMA_DIR to use another
// folder); never from a node_modules in the source tree. Run by
// `cargo test --test prometheus_e2e` (dashboard_type_checks_against_grafana_schema).
//
// Enum-typed options are relaxed to their values ("horizontal" for
// VizOrientation.Horizontal), as the JSON holds values, not enum members.
// The import-only keys (__inputs, __elements, __requires) are not part of
// the dashboard model and are left out.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const deps = resolve(process.env.GRAFANA_SCHEMA_DIR || join(repo, "target/test-deps/grafana-schema"));
const dashboardPath = resolve(process.argv[2] || join(repo, "grafana/dashboards/aws-iam-access-keys.json"));
const tsc = join(deps, "node_modules/typescript/bin/tsc");
const schema = join(deps, "node_modules/@grafana/schema/package.json");
for (const [what, path] of [["typescript", tsc], ["@grafana/schema", schema]]) {
  if (!existsSync(path)) {
    console.error(`typecheck-dashboard: ${what} is not installed in ${deps}: run scripts/install-test-deps.sh`);
    process.exit(2);
  }
}

const cfg = (panel) => `@grafana/schema/dist/esm/raw/composable/${panel}/panelcfg/x/`;
// Panel type -> its options and field config types.
const PANELS = {
  stat: ["Stat.Options", "{}"],
  table: ["Table.Options", "Table.FieldConfig"],
  barchart: ["BarChart.Options", "BarChart.FieldConfig"],
  timeseries: ["TimeSeries.Options", "TimeSeries.FieldConfig"],
};

const dashboard = JSON.parse(readFileSync(dashboardPath, "utf8"));
const { __inputs, __elements, __requires, panels = [], ...model } = dashboard;
const lines = [
  `import type { Dashboard, FieldConfig, FieldConfigSource, Panel, RowPanel } from "@grafana/schema";`,
  `import type * as Stat from "${cfg("stat")}StatPanelCfg_types.gen";`,
  `import type * as Table from "${cfg("table")}TablePanelCfg_types.gen";`,
  `import type * as BarChart from "${cfg("barchart")}BarChartPanelCfg_types.gen";`,
  `import type * as TimeSeries from "${cfg("timeseries")}TimeSeriesPanelCfg_types.gen";`,
  "type Loose<T> = T extends string ? `${T}` : T extends number | boolean | null | undefined ? T",
  "  : T extends (infer U)[] ? Loose<U>[] : T extends object ? { [K in keyof T]: Loose<T[K]> } : T;",
  "// Panel<O, F> leaves `options` untyped and lets `custom` hold any key: type both.",
  "type Typed<O, F> = Omit<Panel, \"options\" | \"fieldConfig\"> & {",
  "  options?: O;",
  "  fieldConfig?: Omit<FieldConfigSource<F>, \"defaults\"> & { defaults: Omit<FieldConfig<F>, \"custom\"> & { custom?: F } };",
  "};",
  `export const dashboard: Loose<Omit<Dashboard, "panels">> = ${JSON.stringify(model, null, 2)};`,
];
const walk = (list) => {
  for (const panel of list) {
    const where = `panel ${panel.id} (${panel.type} "${panel.title}")`;
    if (panel.type === "row") {
      const { panels: inner = [], ...row } = panel;
      lines.push(`// ${where}`, `export const panel${panel.id}: Loose<Omit<RowPanel, "panels">> = ${JSON.stringify(row, null, 2)};`);
      walk(inner);
      continue;
    }
    const types = PANELS[panel.type];
    if (!types) {
      console.error(`typecheck-dashboard: ${where}: no schema for panel type ${panel.type}; add it to PANELS`);
      process.exit(1);
    }
    lines.push(`// ${where}`, `export const panel${panel.id}: Loose<Typed<${types[0]}, ${types[1]}>> = ${JSON.stringify(panel, null, 2)};`);
  }
};
walk(panels);

const work = mkdtempSync(join(tmpdir(), "typecheck-dashboard-"));
writeFileSync(join(work, "dashboard.ts"), lines.join("\n") + "\n");
writeFileSync(
  join(work, "tsconfig.json"),
  JSON.stringify({
    compilerOptions: {
      strict: true,
      noEmit: true,
      target: "es2022",
      module: "esnext",
      moduleResolution: "bundler",
      skipLibCheck: true,
      typeRoots: [],
      types: [],
      baseUrl: ".",
      paths: { "@grafana/schema": [join(deps, "node_modules/@grafana/schema/dist/esm/index.d.mts")], "@grafana/schema/*": [join(deps, "node_modules/@grafana/schema/*")] },
    },
    files: ["dashboard.ts"],
  }, null, 2),
);
const version = JSON.parse(readFileSync(schema, "utf8")).version;
try {
  execFileSync(process.execPath, [tsc, "-p", join(work, "tsconfig.json"), "--pretty", "false"], { stdio: "inherit" });
} catch {
  console.error(`typecheck-dashboard: ${dashboardPath} does not match @grafana/schema ${version} (see ${join(work, "dashboard.ts")})`);
  process.exit(1);
}
rmSync(work, { recursive: true, force: true });
console.log(`typecheck-dashboard: ${dashboardPath}: ${panels.length} panels match @grafana/schema ${version}`);
