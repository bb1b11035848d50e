/**
 * A throw-away CA for the TLS tests, made with `openssl` in a temporary directory: a server certificate for the
 * emulator's addresses (127.0.0.1-3 and the name `starrocks.test`) and a client certificate for mutual TLS.
 */
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

export interface Pki {
  readonly dir: string
  readonly ca: string
  readonly serverCert: string
  readonly serverKey: string
  readonly clientCert: string
  readonly clientKey: string
  /** The files, for the `sink.tls.*-file` keys. */
  readonly files: { readonly ca: string; readonly clientCert: string; readonly clientKey: string }
  readonly remove: () => void
}

export const makePki = (): Pki => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "sink-tls-"))
  const run = (...args: ReadonlyArray<string>) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" })
  run(..."req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=sink-test-CA".split(" "))
  const issue = (name: string, ext: string) => {
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`)
    Fs.writeFileSync(Path.join(dir, `${name}.ext`), ext)
    run(
      ..."x509 -req -CA ca.pem -CAkey ca.key -CAcreateserial -days 2".split(" "),
      "-in",
      `${name}.csr`,
      "-out",
      `${name}.pem`,
      "-extfile",
      `${name}.ext`
    )
  }
  issue(
    "server",
    "subjectAltName=IP:127.0.0.1,IP:127.0.0.2,IP:127.0.0.3,DNS:starrocks.test\nbasicConstraints=CA:FALSE\n"
  )
  issue("client", "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n")
  const read = (f: string) => Fs.readFileSync(Path.join(dir, f), "utf8")
  return {
    dir,
    ca: read("ca.pem"),
    serverCert: read("server.pem"),
    serverKey: read("server.key"),
    clientCert: read("client.pem"),
    clientKey: read("client.key"),
    files: {
      ca: Path.join(dir, "ca.pem"),
      clientCert: Path.join(dir, "client.pem"),
      clientKey: Path.join(dir, "client.key")
    },
    remove: () => Fs.rmSync(dir, { recursive: true, force: true })
  }
}
