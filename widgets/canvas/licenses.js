// Writes the licences of every package in the FlowCanvas bundle beside it
// (../_flowcanvas.bundle.js.LICENSE.txt): the production dependencies in package-lock.json.
const fs = require("fs")
const path = require("path")
const lock = JSON.parse(fs.readFileSync(path.join(__dirname, "package-lock.json"), "utf8"))
const out = ["Third-party software bundled in _flowcanvas.bundle.js (built from widgets/canvas/).", ""]
for (const [where, info] of Object.entries(lock.packages).sort()) {
  if (!where || info.dev) continue
  const dir = path.join(__dirname, where)
  const name = where.replace(/^.*node_modules\//, "")
  const file = fs.readdirSync(dir).find((f) => /^(licen[cs]e|copying)(\.|$)/i.test(f))
  out.push("=".repeat(78), `${name} ${info.version} (${info.license || "see below"})`, "=".repeat(78))
  out.push(file ? fs.readFileSync(path.join(dir, file), "utf8").trim() : "(no licence file in the package)", "")
}
fs.writeFileSync(path.join(__dirname, "..", "_flowcanvas.bundle.js.LICENSE.txt"), out.join("\n") + "\n")
