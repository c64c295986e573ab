/** Child for the permission test: opens a serial reader and prints the first error it reports. */
import { ReaderConfig } from '../config.js';
import { SerialCardReader } from '../rfid/reader.js';

const path = process.argv[2]!;
// Become the service user only now, with our modules and serialport's binding already loaded:
// the checkout may sit in a folder that user cannot even enter (mktemp -d makes it 0700).
const uid = process.argv[3];
if (uid && process.setuid && process.setgid) {
  process.setgid(Number(uid));
  process.setuid(Number(uid));
}
const reader = new SerialCardReader({ ...ReaderConfig.parse({ driver: 'serial', path }), path });
reader.on('error', (e) => {
  console.log(JSON.stringify({ code: e.code, message: e.message, fix: e.fix }));
  void reader.stop().then(() => process.exit(0));
});
reader.on('connected', () => {
  console.log(JSON.stringify({ connected: true }));
  void reader.stop().then(() => process.exit(0));
});
await reader.start();
