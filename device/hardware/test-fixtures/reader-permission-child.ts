/** Child for the permission test: opens a serial reader and prints the first error it reports. */
import { ReaderConfig } from '../config.js';
import { SerialCardReader } from '../rfid/reader.js';

const path = process.argv[2]!;
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
