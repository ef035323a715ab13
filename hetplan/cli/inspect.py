"""CLI: `hetplan catalog`, `hetplan model`, `hetplan scenario` (inspect inputs)."""

from __future__ import annotations

import typer

from hetplan.cli.options import AsJson, new_app


def register(app: typer.Typer, echo_json) -> None:
    catalog_app = new_app(help="Inspect the GPU catalog and prices.")
    model_app = new_app(help="Inspect model architectures.")
    scenario_app = new_app(help="Check planning scenarios.")
    app.add_typer(catalog_app, name="catalog")
    app.add_typer(model_app, name="model")
    app.add_typer(scenario_app, name="scenario")

    @catalog_app.command("list")
    def catalog_list(
        prices: str = typer.Option(None, help="Price sheet to show (e.g. 2026-04-17-seed)."),
        as_json: AsJson = False,
    ) -> None:
        """List every GPU with its key figures (dense TFLOPS)."""
        from hetplan.catalog import load_catalog
        from hetplan.tables import fmt_num, text_table

        cat = load_catalog()
        price = {}
        if prices:
            cat.price_sheet(prices, field="--prices")
            for g in cat.gpus:
                price[g] = cat.cheapest_price_usd_per_hour(prices, g)
        if as_json:
            echo_json([{**g.model_dump(exclude={"sources", "notes"}),
                        **({"price_usd_per_hour": price.get(n)} if prices else {})}
                       for n, g in cat.gpus.items()])
            return
        headers = ["gpu", "vendor", "arch", "mem_gb", "bw_tbps", "bf16_tflops", "fp8_tflops",
                   "fp4_tflops", "link", "link_gb_s"] + (["usd_per_hour"] if prices else [])
        rows = []
        for n, g in cat.gpus.items():
            t = g.dense_tflops
            rows.append([n, g.vendor, g.architecture, fmt_num(g.memory_gb), fmt_num(g.mem_bw_tbps),
                         fmt_num(t.get("bf16")), fmt_num(t.get("fp8")), fmt_num(t.get("fp4")),
                         g.intra_node_link, fmt_num(g.intra_node_bw_gb_per_s)]
                        + ([fmt_num(price.get(n))] if prices else []))
        typer.echo(text_table(headers, rows))
        typer.echo("TFLOPS are dense (no 2:4 sparsity); '-' = unsupported dtype.")


    @catalog_app.command("show")
    def catalog_show(gpu: str, as_json: AsJson = False) -> None:
        """Show one GPU, every figure with its source, and its offers in each price sheet."""
        from hetplan.catalog import load_catalog

        cat = load_catalog()
        g = cat.gpu(gpu, field="GPU")
        offers = {name: [o.model_dump() for o in sheet.offers if o.gpu == g.name]
                  for name, sheet in cat.price_sheets.items()}
        if as_json:
            echo_json({**g.model_dump(), "references": {k: cat.references[v]
                                                        for k, v in g.sources.items()},
                       "offers": offers})
            return
        for field, value in g.model_dump(exclude={"sources", "notes", "name"}).items():
            src = g.sources.get(field)
            typer.echo(f"{field:24s} {value}" + (f"   [{src}]" if src else ""))
        for k, v in g.sources.items():
            if k.startswith("dense_tflops."):
                typer.echo(f"{'':24s} {k}: [{v}]")
        if g.notes:
            typer.echo(f"notes: {g.notes}")
        typer.echo("sources:")
        for ref in sorted(set(g.sources.values())):
            typer.echo(f"  [{ref}] {cat.references[ref]}")
        typer.echo("offers:")
        for sheet, rows in offers.items():
            for o in rows:
                spot = o["spot_price_usd_per_hour"]
                typer.echo(f"  {sheet}: {o['provider']} {o['region']} ${o['price_usd_per_hour']}/h"
                           + (f" (spot ${spot}/h)" if spot else ""))


    @model_app.command("show")
    def model_show(model: str, as_json: AsJson = False) -> None:
        """Show a model's architecture and derived figures (params, weight and KV bytes, FLOPs)."""
        from hetplan.model import load_model
        from hetplan.modelinfo import model_summary, model_summary_text

        spec = load_model(model, field="MODEL")
        if as_json:
            echo_json(model_summary(spec))
        else:
            typer.echo(model_summary_text(spec))


    @scenario_app.command("check")
    def scenario_check(path: str, as_json: AsJson = False) -> None:
        """Validate a scenario file and print what it asks for."""
        from hetplan.catalog import load_catalog
        from hetplan.fleet.spec import is_fleet_file
        from hetplan.scenario import load_scenario, scenario_gpus

        if is_fleet_file(path):
            from hetplan.cli.fleet import check_fleet_file
            return check_fleet_file(path, as_json, echo_json)
        cat = load_catalog()
        rs = load_scenario(path, cat)
        s, spec = rs.scenario, rs.model
        gpus = scenario_gpus(s, cat)
        summary = {"name": s.name, "model": spec.name, "params_b": round(spec.total_params / 1e9, 2),
                   "slo": s.slo.model_dump(), "gpus": gpus, "prices": s.catalog.prices,
                   "objective": s.objective, "workload": s.workload.model_dump(exclude_none=True)}
        if as_json:
            echo_json(summary)
            return
        typer.echo(f"scenario {s.name}: OK")
        typer.echo(f"  model     {spec.name} ({summary['params_b']} B params)")
        typer.echo(f"  slo       p{s.slo.percentile:g} TTFT <= {s.slo.ttft_ms:g} ms, "
                   f"p{s.slo.percentile:g} TPOT <= {s.slo.tpot_ms:g} ms")
        typer.echo(f"  gpus      {', '.join(gpus)} (prices: {s.catalog.prices})")
        typer.echo(f"  objective {s.objective}")
