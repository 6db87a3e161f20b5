"""paperchat as a LangChain tool, for agents: a question in, the answer and its numbered sources out.

The tool's reply is compact (about 2,000 characters by default): the answer (or "I don't know"), then one
line per cited excerpt with paper, page and the excerpt, shortened to fit. An agent can cite it onwards.

Example:
    >>> from langchain.agents import create_agent
    >>> from paperchat import create_paper_tool
    >>> agent = create_agent(model, tools=[create_paper_tool()])  # doctest: +SKIP
"""

from __future__ import annotations

from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

DESCRIPTION = (
    "Answers a question from the indexed scientific papers, quoting or citing the excerpts it rests on "
    "(paper, page). Says it does not know when the papers do not answer. Optionally restricted to papers "
    "named by file name, title or id."
)


class PaperQuestion(BaseModel):
    """The tool's arguments."""

    question: str = Field(description="A question about the content of the papers, standing on its own.")
    papers: list[str] | None = Field(default=None, description="Only these papers (file names, titles or ids).")


def create_paper_tool(
    chain: Runnable | None = None,
    *,
    name: str = "ask_papers",
    description: str = DESCRIPTION,
    max_chars: int = 2000,
) -> BaseTool:
    """A LangChain tool that asks the paperchat chain and returns its answer with numbered sources.

    Args:
        chain: A chain from :func:`~paperchat.chain.create_qa_chain` (default: :func:`~paperchat.chain.load_chain`,
            the configured index and LLM).
        name: The tool's name, as the agent sees it.
        description: What the agent is told the tool does.
        max_chars: About how long a reply may be.
    """
    if chain is None:
        from paperchat.chain import load_chain

        chain = load_chain()
    qa = chain

    def ask(question: str, papers: list[str] | None = None) -> str:
        return qa.invoke({"question": question, "papers": papers}).compact(max_chars)

    async def aask(question: str, papers: list[str] | None = None) -> str:
        return (await qa.ainvoke({"question": question, "papers": papers})).compact(max_chars)

    return StructuredTool.from_function(
        func=ask, coroutine=aask, name=name, description=description, args_schema=PaperQuestion
    )
