import * as effectEslint from "@effect/eslint-plugin"
import tseslint from "typescript-eslint"
import local from "./eslint/no-cycle.mjs"

export default [
  { ignores: ["**/node_modules/**", "**/build/**", "**/dist/**", "**/*.mjs", "**/*.js"] },
  ...tseslint.configs.recommended,
  ...effectEslint.configs.dprint,
  {
    files: ["**/*.ts"],
    rules: {
      "@effect/dprint": ["error", {
        config: {
          indentWidth: 2,
          lineWidth: 120,
          semiColons: "asi",
          quoteStyle: "alwaysDouble",
          trailingCommas: "never",
          operatorPosition: "maintain",
          "arrowFunction.useParentheses": "force"
        }
      }],
      "@typescript-eslint/no-explicit-any": "off",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/no-namespace": "off",
      "@typescript-eslint/no-empty-object-type": "off",
      "@typescript-eslint/consistent-type-imports": "error",
      "no-console": "error"
    }
  },
  {
    // No import cycle, type-only imports included (import-x/no-cycle skips those): see eslint/no-cycle.mjs.
    files: ["packages/*/src/**/*.ts"],
    plugins: { local },
    rules: { "local/no-cycle": "error" }
  },
  {
    files: ["**/bench/**/*.ts", "**/scripts/**/*.ts", "packages/cli/src/**/*.ts"],
    rules: { "no-console": "off" }
  }
]
