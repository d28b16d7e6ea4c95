// The console's words in English and Bahasa Indonesia. The language is the one remembered in localStorage,
// else the first of navigator.languages we have, else English.
const en = {
  'app.name': 'opentrail',
  'nav.events': 'Event history', 'nav.trails': 'Trails', 'nav.insights': 'Insights',
  'nav.signout': 'Sign out', 'nav.language': 'Language', 'nav.signedInAs': 'Signed in as {user} ({role})',
  'signin.title': 'Sign in to opentrail', 'signin.withKeys': 'Access keys', 'signin.withUser': 'Console user',
  'signin.accessKeyId': 'Access key ID', 'signin.secretAccessKey': 'Secret access key',
  'signin.user': 'User name', 'signin.password': 'Password', 'signin.submit': 'Sign in',
  'signin.expired': 'Your session has expired. Sign in again.',
  'signin.ended': 'Your session has ended. Sign in again.',
  'signin.wrong': 'Sign-in failed: {message}.', 'signin.busy': 'Signing in…',
  'events.title': 'Event history', 'events.filters': 'Filters', 'events.addFilter': 'Add filter',
  'events.removeFilter': 'Remove filter', 'events.attribute': 'Attribute', 'events.value': 'Value',
  'events.apply': 'Apply', 'events.clear': 'Clear filters', 'events.time': 'Time range',
  'range.all': 'All time', 'range.1h': 'Last hour', 'range.1d': 'Last day', 'range.7d': 'Last week',
  'range.custom': 'Custom', 'range.start': 'Start (UTC)', 'range.end': 'End (UTC)',
  'events.columns': 'Columns', 'events.previous': 'Previous page', 'events.next': 'Next page',
  'events.page': 'Page {n}', 'events.none': 'No events match these filters in this time range.',
  'events.loading': 'Loading events…', 'events.count': '{n} events in the chart range ({errors} with errors)',
  'col.eventTime': 'Event time', 'col.eventName': 'Event name', 'col.username': 'User name',
  'col.eventSource': 'Event source', 'col.resourceType': 'Resource type', 'col.resourceName': 'Resource name',
  'col.sourceIPAddress': 'Source IP address', 'col.errorCode': 'Error code', 'col.accessKeyId': 'Access key',
  'col.readOnly': 'Read-only', 'col.awsRegion': 'Region', 'col.how': 'How',
  'chart.title': 'Activity', 'chart.label': '{count} events ({errors} errors) from {start} to {end}. Select to zoom in.',
  'chart.errors': 'errors', 'chart.baseline': 'baseline', 'chart.events': 'events',
  'error.range': 'The time range is impossible: the start ({start}) is after the end ({end}).',
  'error.badTime': '"{value}" is not a time (use ISO-8601, e.g. 2024-05-01T09:00:00Z).',
  'error.unknownAttribute': '"{key}" is not a lookup attribute. Known: {known}.',
  'error.unknownParam': '"{key}" in the address is not something the event history understands.',
  'error.generic': 'Something went wrong: {message}', 'error.notFound': 'No event has the ID {id}.',
  'error.page': 'There is no page at {path}.',
  'detail.title': 'Event {name}', 'detail.back': 'Back to event history', 'detail.what': 'What happened',
  'detail.who': 'Who did it', 'detail.when': 'When', 'detail.how': 'How', 'detail.where': 'From where',
  'detail.error': 'Error', 'detail.json': 'Full JSON', 'detail.showJson': 'Show the JSON',
  'detail.hideJson': 'Hide the JSON', 'detail.eventName': 'Event name', 'detail.eventSource': 'Event source',
  'detail.resources': 'Resources', 'detail.request': 'Request parameters', 'detail.identityType': 'Identity type',
  'detail.user': 'User', 'detail.arn': 'ARN', 'detail.accessKey': 'Access key', 'detail.session': 'Session',
  'detail.mfa': 'MFA used', 'detail.utc': 'UTC', 'detail.local': 'Your time', 'detail.tool': 'Tool',
  'detail.userAgent': 'User agent', 'detail.fromConsole': 'Session credentials from the console',
  'detail.sourceIp': 'Source IP address', 'detail.region': 'Region', 'detail.errorCode': 'Error code',
  'detail.errorMessage': 'Error message', 'detail.noError': 'None: the call succeeded.',
  'detail.eventId': 'Event ID', 'detail.readOnly': 'Read-only', 'detail.sessionStarted': 'started {time}',
  'detail.filterHint': 'Select any value to see all events with it.', 'yes': 'Yes', 'no': 'No',
  'how.console': 'AWS Management Console', 'how.cli': 'AWS CLI', 'how.sdk': 'AWS SDK ({lang})',
  'how.terraform': 'Terraform', 'how.opentrail': 'opentrail', 'how.service': 'An AWS service',
  'how.browser': 'A web browser', 'how.other': 'Another tool',
  'trails.title': 'Trails', 'trails.none': 'No trails yet. Create one with the AWS CLI: aws cloudtrail create-trail.',
  'trails.logging': 'Logging', 'trails.notLogging': 'Not logging', 'trails.bucket': 'S3 bucket',
  'trails.latestDelivery': 'Latest delivery', 'trails.latestDigest': 'Latest digest',
  'trails.deliveryError': 'Latest delivery error', 'trails.digestError': 'Latest digest error',
  'trails.selectors': 'Event selectors', 'trails.insightSelectors': 'Insights selectors',
  'trails.start': 'Start logging', 'trails.stop': 'Stop logging', 'trails.never': 'Never',
  'trails.noneSet': 'None', 'trails.validation': 'Log file validation', 'trails.multiRegion': 'Multi-Region',
  'insights.title': 'Insights', 'insights.none': 'No Insights events in this time range.',
  'insights.type': 'Type', 'insights.window': 'Window', 'insights.ongoing': 'ongoing',
  'insights.rate': 'Rate (per minute)', 'insights.baselineRate': 'Baseline (per minute)',
  'insights.attributions': 'Attributions', 'insights.attribute': 'Attribute', 'insights.inInsight': 'During the Insight',
  'insights.inBaseline': 'Baseline', 'insights.viewEvents': 'View the events',
  'insights.chart': '{api}: calls per minute around the Insight, against its baseline',
};

const id = {
  'app.name': 'opentrail',
  'nav.events': 'Riwayat peristiwa', 'nav.trails': 'Jejak', 'nav.insights': 'Insights',
  'nav.signout': 'Keluar', 'nav.language': 'Bahasa', 'nav.signedInAs': 'Masuk sebagai {user} ({role})',
  'signin.title': 'Masuk ke opentrail', 'signin.withKeys': 'Kunci akses', 'signin.withUser': 'Pengguna konsol',
  'signin.accessKeyId': 'Access key ID', 'signin.secretAccessKey': 'Secret access key',
  'signin.user': 'Nama pengguna', 'signin.password': 'Kata sandi', 'signin.submit': 'Masuk',
  'signin.expired': 'Sesi Anda telah berakhir. Silakan masuk lagi.',
  'signin.ended': 'Sesi Anda sudah selesai. Silakan masuk lagi.',
  'signin.wrong': 'Gagal masuk: {message}.', 'signin.busy': 'Sedang masuk…',
  'events.title': 'Riwayat peristiwa', 'events.filters': 'Filter', 'events.addFilter': 'Tambah filter',
  'events.removeFilter': 'Hapus filter', 'events.attribute': 'Atribut', 'events.value': 'Nilai',
  'events.apply': 'Terapkan', 'events.clear': 'Hapus semua filter', 'events.time': 'Rentang waktu',
  'range.all': 'Semua waktu', 'range.1h': 'Satu jam terakhir', 'range.1d': 'Satu hari terakhir',
  'range.7d': 'Satu minggu terakhir', 'range.custom': 'Kustom', 'range.start': 'Mulai (UTC)',
  'range.end': 'Selesai (UTC)', 'events.columns': 'Kolom', 'events.previous': 'Halaman sebelumnya',
  'events.next': 'Halaman berikutnya', 'events.page': 'Halaman {n}',
  'events.none': 'Tidak ada peristiwa yang cocok dengan filter ini dalam rentang waktu ini.',
  'events.loading': 'Memuat peristiwa…', 'events.count': '{n} peristiwa dalam rentang grafik ({errors} dengan galat)',
  'col.eventTime': 'Waktu peristiwa', 'col.eventName': 'Nama peristiwa', 'col.username': 'Nama pengguna',
  'col.eventSource': 'Sumber peristiwa', 'col.resourceType': 'Jenis sumber daya', 'col.resourceName': 'Nama sumber daya',
  'col.sourceIPAddress': 'Alamat IP sumber', 'col.errorCode': 'Kode galat', 'col.accessKeyId': 'Kunci akses',
  'col.readOnly': 'Hanya baca', 'col.awsRegion': 'Region', 'col.how': 'Cara',
  'chart.title': 'Aktivitas', 'chart.label': '{count} peristiwa ({errors} galat) dari {start} sampai {end}. Pilih untuk memperbesar.',
  'chart.errors': 'galat', 'chart.baseline': 'garis dasar', 'chart.events': 'peristiwa',
  'error.range': 'Rentang waktu tidak mungkin: awal ({start}) sesudah akhir ({end}).',
  'error.badTime': '"{value}" bukan waktu (gunakan ISO-8601, mis. 2024-05-01T09:00:00Z).',
  'error.unknownAttribute': '"{key}" bukan atribut pencarian. Yang dikenal: {known}.',
  'error.unknownParam': '"{key}" di alamat ini tidak dikenali oleh riwayat peristiwa.',
  'error.generic': 'Terjadi kesalahan: {message}', 'error.notFound': 'Tidak ada peristiwa dengan ID {id}.',
  'error.page': 'Tidak ada halaman di {path}.',
  'detail.title': 'Peristiwa {name}', 'detail.back': 'Kembali ke riwayat peristiwa', 'detail.what': 'Apa yang terjadi',
  'detail.who': 'Siapa pelakunya', 'detail.when': 'Kapan', 'detail.how': 'Bagaimana', 'detail.where': 'Dari mana',
  'detail.error': 'Galat', 'detail.json': 'JSON lengkap', 'detail.showJson': 'Tampilkan JSON',
  'detail.hideJson': 'Sembunyikan JSON', 'detail.eventName': 'Nama peristiwa', 'detail.eventSource': 'Sumber peristiwa',
  'detail.resources': 'Sumber daya', 'detail.request': 'Parameter permintaan', 'detail.identityType': 'Jenis identitas',
  'detail.user': 'Pengguna', 'detail.arn': 'ARN', 'detail.accessKey': 'Kunci akses', 'detail.session': 'Sesi',
  'detail.mfa': 'Memakai MFA', 'detail.utc': 'UTC', 'detail.local': 'Waktu Anda', 'detail.tool': 'Alat',
  'detail.userAgent': 'Agen pengguna', 'detail.fromConsole': 'Kredensial sesi dari konsol',
  'detail.sourceIp': 'Alamat IP sumber', 'detail.region': 'Region', 'detail.errorCode': 'Kode galat',
  'detail.errorMessage': 'Pesan galat', 'detail.noError': 'Tidak ada: panggilan berhasil.',
  'detail.eventId': 'ID peristiwa', 'detail.readOnly': 'Hanya baca', 'detail.sessionStarted': 'dimulai {time}',
  'detail.filterHint': 'Pilih nilai mana pun untuk melihat semua peristiwa dengan nilai itu.', 'yes': 'Ya', 'no': 'Tidak',
  'how.console': 'AWS Management Console', 'how.cli': 'AWS CLI', 'how.sdk': 'AWS SDK ({lang})',
  'how.terraform': 'Terraform', 'how.opentrail': 'opentrail', 'how.service': 'Layanan AWS',
  'how.browser': 'Peramban web', 'how.other': 'Alat lain',
  'trails.title': 'Jejak', 'trails.none': 'Belum ada jejak. Buat dengan AWS CLI: aws cloudtrail create-trail.',
  'trails.logging': 'Mencatat', 'trails.notLogging': 'Tidak mencatat', 'trails.bucket': 'Bucket S3',
  'trails.latestDelivery': 'Pengiriman terakhir', 'trails.latestDigest': 'Digest terakhir',
  'trails.deliveryError': 'Galat pengiriman terakhir', 'trails.digestError': 'Galat digest terakhir',
  'trails.selectors': 'Pemilih peristiwa', 'trails.insightSelectors': 'Pemilih Insights',
  'trails.start': 'Mulai mencatat', 'trails.stop': 'Hentikan pencatatan', 'trails.never': 'Belum pernah',
  'trails.noneSet': 'Tidak ada', 'trails.validation': 'Validasi berkas log', 'trails.multiRegion': 'Multi-Region',
  'insights.title': 'Insights', 'insights.none': 'Tidak ada peristiwa Insights dalam rentang waktu ini.',
  'insights.type': 'Jenis', 'insights.window': 'Jendela', 'insights.ongoing': 'masih berlangsung',
  'insights.rate': 'Laju (per menit)', 'insights.baselineRate': 'Garis dasar (per menit)',
  'insights.attributions': 'Atribusi', 'insights.attribute': 'Atribut', 'insights.inInsight': 'Selama Insight',
  'insights.inBaseline': 'Garis dasar', 'insights.viewEvents': 'Lihat peristiwanya',
  'insights.chart': '{api}: panggilan per menit di sekitar Insight, dibandingkan garis dasarnya',
};

export const LANGUAGES = { en: 'English', id: 'Bahasa Indonesia' };
const DICTS = { en, id };
const KEY = 'opentrail.lang';

function pick() {
  const saved = localStorage.getItem(KEY);
  if (saved && DICTS[saved]) return saved;
  for (const l of navigator.languages || [navigator.language || 'en']) {
    const base = String(l).toLowerCase().split('-')[0];
    if (base === 'in') return 'id'; // the old ISO code for Indonesian
    if (DICTS[base]) return base;
  }
  return 'en';
}

let current = pick();

export function lang() { return current; }

export function setLang(l) {
  if (!DICTS[l]) return;
  current = l;
  localStorage.setItem(KEY, l);
  document.documentElement.lang = l;
}

export function t(key, params = {}) {
  const text = DICTS[current][key] ?? en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, k) => (params[k] ?? `{${k}}`));
}

document.documentElement.lang = current;
