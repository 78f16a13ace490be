console.log("scripted agent: under construction");
