"""The lookup index: answer "was this URL / domain / document used, and why?" in well under a second,
whatever the manifest's size.

The manifest parts are in processing order, so finding one URL in them means scanning every row. The
index is a copy of the few columns a site owner asks about, sorted so that one answer sits in one
row group, plus a small JSON table of where each row group starts and ends:

    index/
      index.json              layout version, manifest digest, row counts, per-file row-group key ranges
      urls-NNNNN.parquet      host_key, url, doc_id, decision, reasons, licence, licence_location,
                              crawl_date, robots_snapshot, source_file, source_offset;
                              sorted by (host_key, url, doc_id); row groups of ROW_GROUP rows
      doc_ids-NNNNN.parquet   doc_id, host_key, url; sorted by doc_id
      domains.parquet         one row per domain: counts per decision, reasons, licences, robots
                              snapshot dates, first and last crawl date; sorted by host_key

`host_key` is the domain with its labels reversed (`news.example.org` → `org.example.news`), so a
domain and all its subdomains are one contiguous range. A URL lookup computes the key from the URL,
bisects the row-group table in index.json, reads one row group (a few ms) and filters it; a doc_id
lookup does the same in the doc_id files to find the URL, then looks the URL up. Nothing scans the
manifest. The index is built with DuckDB (an external sort, so 10^8 rows fit in bounded memory);
queries need only pyarrow.
"""

from __future__ import annotations

import bisect
import json
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.parquet as pq

from commonweights.errors import InputError

INDEX_VERSION = 1
INDEX_DIR = "index"
ROW_GROUP = 16_384  # one lookup decodes one row group: ~5 ms
FILE_ROWS = 1024 * ROW_GROUP  # 16.8M rows per file keeps each footer small

URL_COLUMNS = (
    "host_key",
    "url",
    "doc_id",
    "decision",
    "reasons",
    "licence",
    "licence_location",
    "crawl_date",
    "robots_snapshot",
    "source_file",
    "source_offset",
)


def domain_of(url: str) -> str:
    """The manifest's domain of a URL: host, lower-case, without `www.` (as data_governance.assess)."""
    try:
        host = urlsplit(url.strip()).hostname or ""
    except ValueError:
        return ""
    return host.lower().removeprefix("www.")


def host_key(domain: str) -> str:
    """`news.example.org` → `org.example.news`: a domain and its subdomains sort together."""
    return ".".join(reversed(domain.strip().lower().removeprefix("www.").rstrip(".").split(".")))


# ---------------------------------------------------------------- build


def build(
    manifest_dir: Path, digest: str, out: Path | None = None, memory_limit: str = "4GB"
) -> dict[str, Any]:
    """Build `manifest_dir/index/` from the manifest parts; returns what index.json records.

    Written into a temporary sibling and renamed into place, so a crash leaves no half index.
    """
    import duckdb

    parts = sorted(manifest_dir.glob("part-*.parquet"))
    if not parts:
        raise InputError(f"{manifest_dir}: no manifest parts to index (run `commonweights curate` first)")
    final = out or manifest_dir / INDEX_DIR
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    con = duckdb.connect()
    con.execute(f"SET memory_limit='{memory_limit}'")
    con.execute("SET enable_progress_bar=false")
    con.execute(f"SET temp_directory='{tmp / 'spill'}'")
    con.execute("SET preserve_insertion_order=true")
    files = ", ".join("'" + str(p).replace("'", "''") + "'" for p in parts)
    # One scan of the parts, and one parse of each consent record, for the six queries below: a
    # view re-read the parquet and re-parsed the JSON each time (0.27 -> 0.18 s for 20,000 rows).
    # The table spills to temp_directory beyond memory_limit, like the sorts.
    con.execute(
        f"""CREATE TEMP TABLE m AS SELECT doc_id, coalesce(url, '') AS url, domain, decision, reasons,
              licence, licence_location, crawl_date, source_file, source_offset,
              array_to_string(list_reverse(string_split(lower(coalesce(domain, '')), '.')), '.') AS host_key,
              json_extract_string(consent, '$.robots.snapshot_date') AS robots_snapshot
            FROM read_parquet([{files}])"""
    )
    rows = int(con.sql("SELECT count(*) FROM m").fetchall()[0][0])
    cols = ", ".join(URL_COLUMNS)
    urls = write_sorted(
        con.sql(f"SELECT {cols} FROM m ORDER BY host_key, url, doc_id").to_arrow_reader(ROW_GROUP),
        tmp,
        "urls",
        ("host_key", "url"),
    )
    ids = write_sorted(
        con.sql("SELECT doc_id, host_key, url FROM m ORDER BY doc_id").to_arrow_reader(ROW_GROUP),
        tmp,
        "doc_ids",
        ("doc_id",),
    )
    domains = _domain_table(con)
    doms = write_sorted(
        pa.RecordBatchReader.from_batches(domains.schema, domains.to_batches()), tmp, "domains", ("host_key",)
    )
    shutil.rmtree(tmp / "spill", ignore_errors=True)
    record = {
        "index_version": INDEX_VERSION,
        "manifest_digest": digest,
        "rows": rows,
        "domains": domains.num_rows,
        "row_group_rows": ROW_GROUP,
        "urls": urls,
        "doc_ids": ids,
        "domains_files": doms,
    }
    (tmp / "index.json").write_text(json.dumps(record, ensure_ascii=False) + "\n")
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return record


def write_sorted(
    reader: pa.RecordBatchReader, folder: Path, stem: str, key: tuple[str, ...]
) -> list[dict[str, Any]]:
    """Stream sorted batches into files of row groups; record each group's first and last key."""
    files: list[dict[str, Any]] = []
    writer: pq.ParquetWriter | None = None
    pending: list[pa.RecordBatch] = []
    pending_rows = 0

    def write(group: pa.Table) -> None:
        nonlocal writer
        if writer is None:
            name = f"{stem}-{len(files):05d}.parquet"
            writer = pq.ParquetWriter(folder / name, reader.schema, compression="zstd")
            files.append({"path": name, "rows": 0, "groups": []})
        writer.write_table(group, row_group_size=ROW_GROUP)
        first = [group.column(k)[0].as_py() for k in key]
        last = [group.column(k)[group.num_rows - 1].as_py() for k in key]
        files[-1]["groups"].append([first, last])
        files[-1]["rows"] += group.num_rows
        if files[-1]["rows"] >= FILE_ROWS:
            writer.close()
            writer = None

    for batch in reader:
        pending.append(batch)
        pending_rows += batch.num_rows
        if pending_rows >= ROW_GROUP:
            table = pa.Table.from_batches(pending, schema=reader.schema).combine_chunks()
            while table.num_rows >= ROW_GROUP:
                write(table.slice(0, ROW_GROUP))
                table = table.slice(ROW_GROUP)
            pending, pending_rows = table.to_batches(), table.num_rows
    if pending_rows:
        write(pa.Table.from_batches(pending, schema=reader.schema).combine_chunks())
    if writer is not None:
        writer.close()
    if not files:  # an empty manifest still gets a header-only file, so queries need no special case
        pq.write_table(reader.schema.empty_table(), folder / f"{stem}-00000.parquet")
        files.append({"path": f"{stem}-00000.parquet", "rows": 0, "groups": []})
    return files


def _domain_table(con: Any) -> pa.Table:
    con.execute(
        """CREATE TEMP TABLE dom AS SELECT host_key, any_value(coalesce(domain, '')) AS domain,
              count(*) AS rows,
              count(*) FILTER (WHERE decision = 'kept') AS kept,
              count(*) FILTER (WHERE decision = 'dropped') AS dropped,
              count(*) FILTER (WHERE decision = 'quarantined') AS quarantined,
              min(crawl_date) AS first_crawl, max(crawl_date) AS last_crawl,
              list_sort(list_distinct(list(robots_snapshot))) AS robots_snapshots
            FROM m GROUP BY host_key"""
    )
    con.execute(
        """CREATE TEMP TABLE dom_r AS SELECT host_key, list(r ORDER BY r) AS reason_names,
              list(n ORDER BY r) AS reason_counts
            FROM (SELECT host_key, r, count(*) AS n FROM (SELECT host_key, unnest(reasons) AS r FROM m)
                  GROUP BY host_key, r)
            GROUP BY host_key"""
    )
    con.execute(
        """CREATE TEMP TABLE dom_l AS SELECT host_key, list(l ORDER BY l) AS licence_names,
              list(n ORDER BY l) AS licence_counts
            FROM (SELECT host_key, coalesce(licence, 'none') AS l, count(*) AS n FROM m
                  WHERE decision = 'kept' GROUP BY host_key, l)
            GROUP BY host_key"""
    )
    return con.sql(
        """SELECT dom.*, dom_r.reason_names, dom_r.reason_counts, dom_l.licence_names, dom_l.licence_counts
           FROM dom LEFT JOIN dom_r USING (host_key) LEFT JOIN dom_l USING (host_key)
           ORDER BY host_key"""
    ).fetch_arrow_table()


# ---------------------------------------------------------------- query


class Index:
    """A built lookup index; every query reads only the row groups that can hold the answer."""

    def __init__(self, folder: Path):
        self.folder = folder
        meta = folder / "index.json"
        if not meta.is_file():
            raise InputError(
                f"{folder}: no lookup index (index.json missing); build it with "
                "`commonweights audit index MANIFEST_DIR` or rerun `commonweights curate`"
            )
        try:
            self.meta = json.loads(meta.read_text())
        except ValueError as e:
            raise InputError(
                f"{meta}: unreadable index ({e}); rebuild it with `commonweights audit index`"
            ) from None
        if self.meta.get("index_version") != INDEX_VERSION:
            raise InputError(
                f"{meta}: index version {self.meta.get('index_version')!r}, this tool reads {INDEX_VERSION}; "
                "rebuild it with `commonweights audit index`"
            )
        self._tables: dict[str, GroupTable] = {}

    def table(self, name: str) -> GroupTable:
        """The key table of `urls`, `doc_ids` or `domains`, built on first use (a query needs one or two)."""
        if name not in self._tables:
            self._tables[name] = GroupTable(self.meta["domains_files" if name == "domains" else name])
        return self._tables[name]

    @classmethod
    def of_manifest(cls, manifest_dir: Path) -> Index:
        return cls(manifest_dir / INDEX_DIR)

    @property
    def digest(self) -> str:
        return str(self.meta["manifest_digest"])

    def _read(self, name: str, lo: Sequence[Any], hi: Sequence[Any]) -> Iterator[pa.Table]:
        """Row groups of `name` whose key range meets [lo, hi], in key order."""
        handles: dict[str, pq.ParquetFile] = {}
        for path, group in self.table(name).candidates(list(lo), list(hi)):
            f = handles.get(path) or handles.setdefault(path, pq.ParquetFile(self.folder / path))
            yield f.read_row_group(group)

    def url(self, url: str) -> list[dict[str, Any]]:
        """Every manifest row of exactly this URL (several captures can share one URL)."""
        key = host_key(domain_of(url))
        found: list[dict[str, Any]] = []
        for table in self._read("urls", [key, url], [key, url]):
            found.extend(_where(table, "url", lambda v: v == url))
        return found

    def doc_id(self, doc_id: str) -> dict[str, Any] | None:
        doc_id = doc_id.strip().lower()
        for table in self._read("doc_ids", [doc_id], [doc_id]):
            for hit in _where(table, "doc_id", lambda v: v == doc_id):
                for row in self.url(hit["url"]):
                    if row["doc_id"] == doc_id:
                        return row
        return None

    def kept_doc_ids(self, domain: str) -> list[str]:
        """doc_ids of every kept document of a domain and its subdomains (what training could read)."""
        key = host_key(domain)

        def under(hk: str) -> bool:
            return hk == key or hk.startswith(key + ".")

        return [
            r["doc_id"]
            for t in self._read("urls", [key, ""], [key + "/", ""])
            for r in _where(t, "host_key", under)
            if r["decision"] == "kept"
        ]

    def domain(self, domain: str, examples: int = 20) -> dict[str, Any]:
        """Aggregates for a domain and its subdomains, plus the first `examples` URLs under it."""
        key = host_key(domain)

        def under(hk: str) -> bool:
            return hk == key or hk.startswith(key + ".")

        # `key.` < `key/`: the domain and its subdomains lie in [key, key + "/")
        rows = [r for t in self._read("domains", [key], [key + "/"]) for r in _where(t, "host_key", under)]
        sample: list[dict[str, Any]] = []
        if rows:
            for t in self._read("urls", [key, ""], [key + "/", ""]):
                sample += _where(t, "host_key", under, limit=examples - len(sample))
                if len(sample) >= examples:
                    break
        cols = ("url", "doc_id", "decision", "reasons", "licence")
        return {"domains": rows, "examples": [{c: r[c] for c in cols} for r in sample]}


def _where(table: pa.Table, column: str, keep: Any, limit: int | None = None) -> list[dict[str, Any]]:
    """Rows of `table` whose `column` value passes `keep` (plain Python: no pyarrow.compute, whose first
    use imports pandas and costs a fresh process more than the lookup itself)."""
    hits = [i for i, v in enumerate(table.column(column).to_pylist()) if keep(v)]
    if limit is not None:
        hits = hits[: max(limit, 0)]
    return [row for i in hits for row in table.slice(i, 1).to_pylist()]  # slice: take() imports compute


class GroupTable:
    """The first/last key of every row group, across files, for bisecting."""

    def __init__(self, files: list[dict[str, Any]]):
        self.where: list[tuple[str, int]] = []
        self.firsts: list[list[Any]] = []
        self.lasts: list[list[Any]] = []
        for f in files:
            for g, (first, last) in enumerate(f["groups"]):
                self.where.append((f["path"], g))
                self.firsts.append(first)
                self.lasts.append(last)

    def candidates(self, lo: list[Any], hi: list[Any]) -> Iterator[tuple[str, int]]:
        # groups are sorted and disjoint except at equal boundary keys: start at the first group whose
        # last key is >= lo, stop after the last group whose first key is <= hi.
        i = bisect.bisect_left(self.lasts, lo)
        while i < len(self.where) and self.firsts[i] <= hi:
            yield self.where[i]
            i += 1
