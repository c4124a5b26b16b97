import { readFileSync } from "node:fs";
import { writeReport, type BenchResults } from "./report.ts";

// Rewrites BENCHMARKS.md from bench/results/latest.json and bench/notes.md, without measuring again.
const results = JSON.parse(readFileSync("bench/results/latest.json", "utf8")) as BenchResults;
writeReport(results, "BENCHMARKS.md");
console.log("BENCHMARKS.md rewritten from bench/results/latest.json and bench/notes.md");
