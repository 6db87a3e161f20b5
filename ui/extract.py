"""The Extract page: every question asked of every paper, as a matrix whose cells are cited, charted,
exported and checked against people. ``ui/app.py`` is the entry point.

The page only renders: the question lists are ``paperchat.questions``, the run (in a background thread,
state on disk) ``paperchat.runner`` over the engine of ``paperchat extract``, the cells and exports
``paperchat.cells``/``paperchat.matrix``, the agreement ``paperchat.agreement``, the manifest
``paperchat.manifest``.
"""

from __future__ import annotations

import time
import zlib

import altair as alt
import pandas as pd
import streamlit as st

from paperchat.agreement import compare, read_gold
from paperchat.cells import ERROR, MISSING, NO_TEXT, NOT_INDEXED, NOT_REPORTED, REPORTED, STATUS_LABELS
from paperchat.conversation import highlight, mode_line, safe_markdown
from paperchat.extract import tasks_for
from paperchat.manifest import build_manifest, load_manifests, summary_lines
from paperchat.matrix import (
    SORT_KEYS,
    Matrix,
    Paper,
    ResultsTable,
    build_matrix,
    heatmap_records,
    long_jsonl,
    papers_from_records,
    report_shares,
    select_papers,
    sort_papers,
    table_rows,
    wide_csv,
)
from paperchat.questions import (
    MAX_QUESTIONS,
    Question,
    QuestionListError,
    check_questions,
    parse_questions,
    preset,
    questions_csv,
    questions_from_rows,
    questions_text,
)
from paperchat.runner import Workspace
from paperchat.ui.resources import resources, results_table
from paperchat.vectorstore.errors import PaperchatError

#: Seconds between progress updates while a run goes on, and between refreshes of the matrix.
PROGRESS_EVERY_S = 1.0
MATRIX_EVERY_S = 5.0
FAILED = {ERROR, NOT_INDEXED, NO_TEXT}
SHOW = {"all cells": None, "reported": REPORTED, "not reported": NOT_REPORTED, "failed": "failed",
        "not run yet": MISSING}
#: Papers the heat map draws unless all are asked for (a browser draws 100 x 28 cells in a blink, 500 x 28 not).
HEATMAP_PAPERS = 100
COLOURS = {"reported": "#2e7d32", "not reported": "#b0bec5", "failed": "#c62828", "not run yet": "#f5f5f5"}


def editor_frame(questions: list[Question]) -> pd.DataFrame:
    return pd.DataFrame({"#": range(1, len(questions) + 1), "column": [q.column for q in questions],
                         "question": [q.text for q in questions]})


def set_questions(questions: list[Question], ws: Workspace) -> None:
    """Adopt a checked list: keep it on disk and show it in a fresh editor."""
    ws.save_questions(questions)
    st.session_state.questions = questions
    st.session_state.editor_version += 1


def open_cell(file: str, column: str) -> None:
    """Show this cell in the Cell section (the matrix and the heat map call it when clicked)."""
    st.session_state.open_cell = (file, column)


def on_matrix_select() -> None:
    cells = st.session_state["matrix"].selection.cells
    shown: list[str] = st.session_state.get("matrix_files", [])
    if cells and cells[0][0] < len(shown) and cells[0][1] != "paper":
        open_cell(shown[cells[0][0]], str(cells[0][1]))


def on_heatmap_select() -> None:
    picked = (st.session_state["heatmap"].selection or {}).get("cell") or []
    if picked and picked[0].get("file") and picked[0].get("column"):
        open_cell(str(picked[0]["file"]), str(picked[0]["column"]))


def show_cell(matrix: Matrix, table: ResultsTable, paper: Paper, question: Question) -> None:
    status = matrix.status(paper, question)
    row = table.row(paper.file, question)
    st.markdown(f"**{safe_markdown(paper.label)}** ({safe_markdown(paper.file)})  \n"
                f"{safe_markdown(question.column)}: {safe_markdown(question.text)}")
    if status == MISSING or row is None:
        st.info("Not run yet: press Run to ask it.")
        return
    if status == REPORTED:
        st.success(safe_markdown(matrix.value(paper, question)))
    elif status == NOT_REPORTED:
        st.info("**Not reported**: the paper does not say (the answerer found no passage that answers it).")
    else:
        st.error(f"**{STATUS_LABELS[status]}**: {safe_markdown(str(row.get('error') or ''))}  \nRun asks it again.")
        return
    details = [safe_markdown(mode_line(str(row.get("mode") or "")))]
    if row.get("confidence") is not None:
        details.append(f"confidence {float(row['confidence']):.2f}")
    st.caption(" · ".join(details))
    if status != REPORTED:
        return
    st.markdown("**Answer:** " + safe_markdown(str(row.get("answer") or "")))
    for c in [c for c in row.get("citations") or [] if c.get("cited")]:
        with st.container(border=True):
            where = [f"[{c.get('n')}] {c.get('title') or c.get('source')}"]
            if c.get("source") and c.get("source") != c.get("title"):
                where[0] += f" ({c.get('source')})"
            if c.get("page") is not None:
                page_end = c.get("page_end")
                where.append(f"pp. {c['page']}-{page_end}" if page_end and page_end != c["page"] else f"p. {c['page']}")
            if c.get("section"):
                where.append(str(c["section"]))
            note = f"similarity to the question {float(c['similarity']):.2f}" if c.get("similarity") is not None else ""
            st.markdown(f"**{safe_markdown(', '.join(where))}**" + (f"  \n:gray[{note}]" if note else ""))
            st.markdown(highlight(str(c.get("text") or ""), str(c.get("sentence") or "")))


# -- state -----------------------------------------------------------------------------------------
try:
    res = resources()
    settings = res["settings"]
    index = res["index"]
    records = index.list_documents()
except PaperchatError as exc:
    st.error(str(exc), icon=":material/error:")
    st.button("Try again")
    st.stop()

ws = Workspace.for_settings(settings)
st.session_state.setdefault("questions", ws.load_questions())
st.session_state.setdefault("editor_version", 0)
st.session_state.setdefault("question_upload", 0)
st.session_state.setdefault("last_matrix_refresh", 0.0)
st.session_state.setdefault("open_cell", None)
table = results_table(str(ws.results))
table.refresh()

st.title("Extract")
st.caption("Ask every question of every paper: one row per paper, one column per question, each cell with its quote.")
st.caption(safe_markdown(mode_line(res["mode"])))

# -- 1. questions ----------------------------------------------------------------------------------
questions: list[Question] = st.session_state.questions
problem = ""
with st.expander(f"Questions ({len(questions)})", expanded=len(table) == 0):
    st.caption(f"Each question has a short column name (letters, digits, _ . -). Add rows at the bottom, delete "
               f"rows with the row menu, change a number in # to move a question. At most {MAX_QUESTIONS}.")
    version = st.session_state.editor_version
    if st.session_state.get("editor_frame_version") != version:
        st.session_state.editor_frame = editor_frame(questions)
        st.session_state.editor_frame_version = version
    edited = st.data_editor(
        st.session_state.editor_frame, num_rows="dynamic", hide_index=True, width="stretch", key=f"editor-{version}",
        column_config={
            "#": st.column_config.NumberColumn("#", width="small", help="Order of the questions"),
            "column": st.column_config.TextColumn("column", width="medium", help="Short column name"),
            "question": st.column_config.TextColumn("question", width="large"),
        },
    )
    try:
        candidate = check_questions(questions_from_rows(edited.to_dict("records")))
        if candidate != questions:
            set_questions(candidate, ws)
            st.rerun()
    except QuestionListError as exc:
        problem = str(exc)
        st.error(problem, icon=":material/error:")
    left, middle, right = st.columns(3)
    with left:
        if st.button("Reset to the 28 methodology questions"):
            set_questions(preset(), ws)
            st.rerun()
    with middle:
        st.download_button("Download questions (CSV)", questions_csv(questions), file_name="questions.csv",
                           mime="text/csv")
    with right:
        st.download_button("Download questions (text)", questions_text(questions), file_name="questions.txt",
                           mime="text/plain")
    upload = st.file_uploader("Upload a question list (text: one question per line; CSV: column,question)",
                              type=["txt", "csv", "jsonl"], key=f"questions-upload-{st.session_state.question_upload}")
    if upload is not None:
        try:
            uploaded = check_questions(parse_questions(upload.getvalue(), upload.name))
        except QuestionListError as exc:
            st.error(str(exc), icon=":material/error:")
        else:
            set_questions(uploaded, ws)
            st.session_state.question_upload += 1
            st.rerun()

# -- 2. papers, mode and the run -------------------------------------------------------------------
titles = {r.id: r.title or r.file for r in records}
saved = [i for i in ws.load_papers() if i in titles]
chosen = st.multiselect("Papers", options=list(titles), default=saved, format_func=lambda i: titles[i],
                        placeholder="All papers", key="extract_papers")
if chosen != saved:
    ws.save_papers(chosen)
selected = [r for r in records if r.id in set(chosen)] if chosen else records
papers = papers_from_records(selected)

state = ws.state()
active = state.active
run_col, cancel_col, info_col = st.columns([1, 1, 4])
with run_col:
    start = st.button("Run", type="primary", disabled=active or bool(problem) or not papers,
                      help="Ask every question of every chosen paper; finished cells are kept and not asked again.")
with cancel_col:
    if st.button("Cancel", disabled=not active or state.status == "elsewhere"):
        ws.cancel()
        st.rerun()
with info_col:
    st.caption(f"{len(papers)} paper(s) x {len(questions)} question(s) = {len(papers) * len(questions)} pairs; "
               f"{safe_markdown(res['mode'])}")
if not records:
    st.info("No papers are indexed yet. Add PDFs on the Chat page, or run: paperchat index PATH")
if start:
    try:
        manifest = build_manifest(settings, res["mode"], index, questions,
                                  [p.file for p in papers] if chosen else None)
        ws.start(res["retriever"], res["chain"], tasks_for(questions, selected), manifest, settings)
    except PaperchatError as exc:
        st.error(str(exc), icon=":material/error:")
    else:
        st.rerun()


@st.fragment(run_every=PROGRESS_EVERY_S if active else None)
def progress_panel() -> None:
    now = ws.state()
    if now.total:
        left = now.seconds_left
        text = f"{now.done} of {now.total} pairs done"
        if now.active and now.rate:
            text += f" · {now.rate:.1f} pairs/s · about {max(0, round(left or 0))} s left"
        text += f" · {now.status}"
        st.progress(min(1.0, now.done / now.total), text=text)
    if now.message:
        (st.warning if now.status in ("failed", "interrupted") else st.caption)(safe_markdown(now.message))
    if active and (not now.active or time.monotonic() - st.session_state.last_matrix_refresh > MATRIX_EVERY_S):
        st.session_state.last_matrix_refresh = time.monotonic()
        st.rerun(scope="app")  # the run ended (or cells were added): show the matrix as it is now


progress_panel()

# -- 3. the matrix ---------------------------------------------------------------------------------
matrix = build_matrix(papers, questions, table)
counts = matrix.counts()
st.subheader("Matrix")
st.caption(f"{len(papers)} papers x {len(questions)} questions: {counts[REPORTED]} reported, "
           f"{counts[NOT_REPORTED]} not reported, {sum(counts[s] for s in FAILED)} failed, "
           f"{counts[MISSING]} not run yet. Click a cell to read its quotes.")
columns_by_name = {q.column: q for q in questions}
f1, f2, f3, f4 = st.columns(4)
with f1:
    needle = st.text_input("Find a paper", placeholder="title or file")
with f2:
    show = st.selectbox("Show papers with", list(SHOW))
with f3:
    within = st.selectbox("in question", ["any question", *columns_by_name])
with f4:
    sort_key = st.selectbox("Sort by", SORT_KEYS)
shown_columns = st.multiselect("Questions shown", list(columns_by_name), placeholder="All questions")
status = SHOW[show]
column = None if within == "any question" else within
if status == "failed":
    shown_papers = [p for s in FAILED for p in select_papers(matrix, needle, s, column)]
    shown_papers = list({p.file: p for p in shown_papers}.values())
else:
    shown_papers = select_papers(matrix, needle, status, column)
shown_papers = sort_papers(matrix, shown_papers, sort_key)
shown_questions = [columns_by_name[c] for c in shown_columns] or questions
st.session_state.matrix_files = [p.file for p in shown_papers]
frame = pd.DataFrame(table_rows(matrix, shown_papers, shown_questions), columns=["paper", *(q.column for q in shown_questions)])
with st.container(key="matrix-grid"):
    st.dataframe(
        frame, hide_index=True, width="stretch", height=min(600, 38 + 35 * max(1, len(frame))), key="matrix",
        on_select=on_matrix_select, selection_mode="single-cell", row_height=35,
        column_config={"paper": st.column_config.TextColumn("paper", pinned=True, width=240),
                       **{q.column: st.column_config.TextColumn(q.column, help=q.text, width=200) for q in shown_questions}},
    )

# -- 4. one cell -----------------------------------------------------------------------------------
st.subheader("Cell")
by_file = {p.file: p for p in papers}
if papers and questions:
    open_file, open_column = st.session_state.open_cell or ("", "")
    open_file = open_file if open_file in by_file else papers[0].file
    open_column = open_column if open_column in columns_by_name else questions[0].column
    listed = zlib.crc32("\n".join([*by_file, *columns_by_name]).encode())
    c1, c2 = st.columns(2)
    # the pickers show the open cell; a click in the matrix or the heat map opens another (new widgets, hence the keys)
    with c1:
        picked_file = st.selectbox("Paper", list(by_file), index=list(by_file).index(open_file),
                                   format_func=lambda f: by_file[f].label, key=f"cell-paper-{open_file}-{listed}")
    with c2:
        picked_column = st.selectbox("Question", list(columns_by_name), index=list(columns_by_name).index(open_column),
                                     format_func=lambda c: f"{c}: {columns_by_name[c].text[:80]}",
                                     key=f"cell-question-{open_column}-{listed}")
    if (picked_file, picked_column) != (open_file, open_column):
        open_cell(picked_file, picked_column)
        st.rerun()
    show_cell(matrix, table, by_file[open_file], columns_by_name[open_column])

# -- 5. charts -------------------------------------------------------------------------------------
st.subheader("Charts")
if papers and questions:
    order = [q.column for q in questions]
    shares = pd.DataFrame(report_shares(matrix))
    share_chart = alt.Chart(shares).mark_bar(color=COLOURS["reported"]).encode(
        x=alt.X("share:Q", title="share of papers that report it", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        y=alt.Y("column:N", sort=order, title=None, axis=alt.Axis(labelOverlap=False)),
        tooltip=["column", "question", "reported", "not reported", "failed", "not run yet",
                 alt.Tooltip("share:Q", format=".0%")],
    ).properties(title="Share of papers reporting each question", height=alt.Step(20))
    st.altair_chart(share_chart, width="stretch")
    heat_papers = shown_papers
    if len(shown_papers) > HEATMAP_PAPERS:
        # a browser draws a few thousand cells at once; more wait until asked for
        if not st.toggle(f"Heat map of all {len(shown_papers)} papers (slower to draw)", key="heat_all"):
            heat_papers = shown_papers[:HEATMAP_PAPERS]
            st.caption(f"The heat map shows the first {HEATMAP_PAPERS} of {len(shown_papers)} papers, as sorted and "
                       "filtered above.")
    cell = alt.selection_point(name="cell", fields=["file", "column"], on="click")
    row_height = max(8, min(22, 900 // max(1, len(heat_papers))))
    heat = alt.Chart(pd.DataFrame(heatmap_records(matrix, heat_papers))).mark_rect(stroke="white", strokeWidth=0.5).encode(
        # sorted by position fields: an explicit list of 500 labels costs Vega a lookup per mark
        x=alt.X("column:N", sort=alt.EncodingSortField("col", op="min"), title=None,
                axis=alt.Axis(labelAngle=-60, orient="top", labelOverlap=False)),
        y=alt.Y("paper:N", sort=alt.EncodingSortField("row", op="min"), title=None,
                axis=alt.Axis(labelLimit=260, labelOverlap=row_height < 12)),
        color=alt.Color("status:N", scale=alt.Scale(domain=list(COLOURS), range=list(COLOURS.values())),
                        legend=alt.Legend(orient="bottom", title=None)),
        opacity=alt.condition(cell, alt.value(1.0), alt.value(0.85)),
        tooltip=["paper", "column", "status", "value"],
    ).add_params(cell).properties(title="Reported, not reported or failed, per paper and question (click a cell)",
                                  height=alt.Step(row_height))
    st.altair_chart(heat, width="stretch", key="heatmap", on_select=on_heatmap_select, selection_mode="cell")

# -- 6. export -------------------------------------------------------------------------------------
st.subheader("Export")
manifests = load_manifests(ws.results)
used = [manifests[r] for r in sorted(matrix.runs()) if r in manifests]
e1, e2 = st.columns(2)
with e1:
    st.download_button("Download CSV (wide: a row per paper)", lambda: wide_csv(matrix, table, used),
                       file_name="paperchat-matrix.csv", mime="text/csv", disabled=not matrix.cells)
with e2:
    st.download_button("Download JSONL (long: a row per pair)", lambda: long_jsonl(matrix, table, used),
                       file_name="paperchat-matrix.jsonl", mime="application/jsonl", disabled=not matrix.cells)
st.caption("Both begin with the run manifest (CSV: '#' lines, read with pandas.read_csv(path, comment='#')). "
           "The same wide table from the command line: paperchat extract --questions FILE --out table.csv --wide")

# -- 7. agreement with people ----------------------------------------------------------------------
st.subheader("Agreement with people")
st.caption("Upload a table coded by people (CSV: paper, question or column, and value or reported yes/no) to see, per "
           "question, how often paperchat agrees on whether the paper reports it, Cohen's kappa, and where they differ.")
gold_file = st.file_uploader("Human-coded table (CSV)", key="gold")
if gold_file is not None:
    try:
        gold = read_gold(gold_file.getvalue(), gold_file.name, papers, questions)
    except PaperchatError as exc:
        st.error(str(exc), icon=":material/error:")
    else:
        report = compare(gold, matrix, table)
        overall = report.overall.as_row()
        m1, m2, m3, m4 = st.columns(4)
        m1.metric("pairs compared", overall["pairs"])
        m2.metric("accuracy", "n/a" if overall["accuracy"] is None else f"{overall['accuracy']:.2f}")
        m3.metric("Cohen's kappa", "n/a" if overall["kappa"] is None else f"{overall['kappa']:.2f}")
        m4.metric("value found", "n/a" if overall["value found"] is None else f"{overall['value found']:.2f}")
        st.dataframe(pd.DataFrame([q.as_row() for q in report.questions] + [overall]), hide_index=True, width="stretch")
        if overall["not compared"]:
            st.caption(f"{overall['not compared']} coded pair(s) were not compared: their cells are not run yet or failed.")
        st.markdown(f"**Disagreements ({len(report.disagreements)})**")
        if report.disagreements:
            st.dataframe(pd.DataFrame(report.disagreements), hide_index=True, width="stretch")

# -- 8. manifest -----------------------------------------------------------------------------------
st.subheader("Run manifest")
latest = list(manifests.values())[-1] if manifests else None
if latest is None:
    st.caption("Recorded when a run starts: answering mode and model, prompt, index fingerprint, settings, "
               "questions, paperchat version.")
else:
    st.code("\n".join(summary_lines(latest)[:7]), language=None)
    with st.expander("The whole manifest (JSON)"):
        st.json(latest, expanded=False)
