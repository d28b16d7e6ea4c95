"""tantivy baseline: one document per event, every attribute an untokenized ("raw") indexed field with basic
postings (doc ids only), a fast field holding the newest-first sort key, the record JSON as the stored field;
a lookup is a boolean AND of term queries collected top-50 by the fast field. Usage: see harness.py."""

import json
import os

import tantivy

import harness

# Hard-coded: the indexing heap, split between the writer threads (tantivy needs >= 3 MB per thread; bigger
# means fewer, larger segments before the final merge).
WRITER_HEAP_BYTES = 1 << 30
WRITER_THREADS = 2
# The sort key packs (event_time_ms, rank among events of the same millisecond in seq order) into one i64,
# because a top-N collector orders by one fast field. Hard-coded: up to 2^20 events may share a millisecond.
TIE_BITS = 20


def schema():
    b = tantivy.SchemaBuilder()
    for col in harness.ATTR_COLUMN.values():
        b.add_text_field(col, stored=col == "event_id", tokenizer_name="raw", index_option="basic")
    b.add_integer_field("sort_key", indexed=False, fast=True)
    # Stored only: a bytes field is the one kind tantivy-py lets us keep out of the inverted index.
    b.add_bytes_field("record", stored=True, indexed=False)
    return b.build()


class Reader:
    def __init__(self, index):
        self.index = index
        self.searcher = index.searcher()
        self.schema = index.schema

    def page(self, q):
        terms = []
        for key, value in q["attrs"]:
            terms.append((tantivy.Occur.Must, tantivy.Query.term_query(self.schema, harness.ATTR_COLUMN[key], value)))
        query = terms[0][1] if len(terms) == 1 else tantivy.Query.boolean_query(terms)
        result = self.searcher.search(
            query, limit=int(q["page"]), count=False, order_by_field="sort_key", order=tantivy.Order.Desc
        )
        ids = []
        for _key, address in result.hits:
            doc = self.searcher.doc(address)
            if doc.get_first("record").decode():
                ids.append(doc.get_first("event_id"))
        return ids

    def count(self):
        return self.searcher.num_docs

    def close(self):
        pass


class Tantivy:
    name = "tantivy"
    concurrency = "process"
    setup = (
        "one document per event; each attribute an untokenized (raw tokenizer) indexed text field with "
        "doc-id-only postings, several values for resource types / names and account ids; an i64 fast field "
        "(event_time_ms, tie rank in seq order) as the newest-first sort key; event_id and the record JSON "
        f"stored (doc store); {WRITER_THREADS} writer threads, one commit, merges awaited; lookups are a "
        "BooleanQuery of Must term queries (a lone TermQuery for one attribute), top 50 by the fast field "
        "descending, then the 50 stored documents fetched; a searcher per client process"
    )

    @staticmethod
    def version():
        return tantivy.__version__

    def load(self, columns_path, workdir):
        path = os.path.join(workdir, "index")
        os.makedirs(path, exist_ok=True)
        index = tantivy.Index(schema(), path=path, reuse=False)
        writer = index.writer(WRITER_HEAP_BYTES, WRITER_THREADS)
        col = {c: i for i, c in enumerate(harness.COLUMNS)}
        ties = {}
        for row in harness.read_rows(columns_path):
            t = int(row[col["event_time_ms"]])
            rank = ties.get(t, 0)
            ties[t] = rank + 1
            if rank >= 1 << TIE_BITS:
                raise SystemExit(f"more than 2^{TIE_BITS} events share the millisecond {t}")
            doc = tantivy.Document()
            for c in harness.ATTR_COLUMN.values():
                v = row[col[c]]
                if c in harness.MULTI:
                    for x in json.loads(v):
                        doc.add_text(c, x)
                elif v:
                    doc.add_text(c, v)
            doc.add_integer("sort_key", (t << TIE_BITS) | rank)
            doc.add_bytes("record", row[col["record"]].encode())
            writer.add_document(doc)
        writer.commit()
        writer.wait_merging_threads()
        index.reload()
        return {"segments": index.searcher().num_segments}

    def open(self, workdir, threads_per_query):
        # tantivy runs a query on the calling thread; threads_per_query has no knob here.
        return Reader(tantivy.Index.open(os.path.join(workdir, "index")))


if __name__ == "__main__":
    harness.main(Tantivy)
